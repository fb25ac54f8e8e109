"""Uploading, listing, downloading, reviewing and replacing a participant's documents.

Every query is scoped to the case *and* the participant, so one participant can never reach
another's file, whatever id they send.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from panel_core.cases import case_types
from panel_core.db.models import Case, Document, DocumentState, PanelTask
from panel_core.db.transaction_hooks import on_commit, on_rollback
from panel_core.documents.content import (
    ALLOWED,
    MAX_IMAGE_PIXELS,
    SNIFF_BYTES,
    Flaw,
    check_structure,
    detect,
)
from panel_core.documents.scanning import Outcome, Scan, Scanner, Verdict
from panel_core.documents.storage import DocumentStorage
from panel_core.forms.files import type_names
from panel_core.i18n import gettext as _
from panel_core.i18n import pick

log = logging.getLogger(__name__)


class UploadRefusedError(ValueError):
    """The file was not kept; the message says why, in the participant's language."""


class _Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int


@dataclass(slots=True)
class _Progress:
    size: int = 0
    media_type: str | None = None


def clean_filename(raw: str) -> str:
    """The name to show and to offer on download: no path, no control characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable())
    name = name.strip(" .")
    return name[:200] or "document"


@dataclass(frozen=True, slots=True)
class _Received:
    """A file in storage that passed every check, with no row referring to it yet."""

    key: str
    name: str
    media_type: str
    size: int
    sha256: str


async def store_upload(
    session: AsyncSession,
    storage: DocumentStorage,
    scanner: Scanner,
    *,
    task: PanelTask,
    participant_id: uuid.UUID,
    field_key: str,
    filename: str,
    chunks: AsyncIterator[bytes],
    limits: Limits,
    accepted: frozenset[str] | None = None,
) -> Document:
    """Stream one file to storage, checking type, size and malware on the way, then its whole
    structure once it is stored.

    ``accepted`` is what the field's ``accept`` lets through (see
    :func:`panel_core.forms.files.accepted_types`): a file of another real type is refused as
    soon as its first bytes tell its type. Nothing is kept of a refused file: a partial write
    is removed by the storage, a complete one here, before any row refers to it.
    """
    assert task.case_id is not None
    received = await _receive(
        storage, scanner, filename=filename, chunks=chunks, limits=limits, accepted=accepted
    )
    return await _keep(
        session,
        storage,
        received,
        case_id=task.case_id,
        participant_id=participant_id,
        panel_task_id=task.id,
        field_key=field_key,
    )


async def _receive(
    storage: DocumentStorage,
    scanner: Scanner,
    *,
    filename: str,
    chunks: AsyncIterator[bytes],
    limits: Limits,
    accepted: frozenset[str] | None = None,
) -> _Received:
    name = clean_filename(filename)

    def judged(media_type: str) -> str:
        if accepted is None or media_type in accepted:
            return media_type
        if not accepted:
            raise _Refusal(
                _("“%(name)s” cannot be sent here: this field takes no files.", name=name)
            )
        raise _Refusal(
            _(
                "“%(name)s” cannot be sent here: this field takes only %(types)s files.",
                name=name,
                types=type_names(accepted),
            )
        )

    digest = hashlib.sha256()
    progress = _Progress()
    head = bytearray()

    async def checked(scan: Scan) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if not chunk:
                continue
            size = progress.size + len(chunk)
            if size > limits.max_bytes:
                raise _Refusal(
                    _(
                        "“%(name)s” is larger than %(limit)s MB. Send a smaller file.",
                        name=name,
                        limit=limits.max_bytes // (1024 * 1024),
                    )
                )
            progress.size = size
            if progress.media_type is None:
                head.extend(chunk[: SNIFF_BYTES - len(head)])
                if len(head) >= SNIFF_BYTES:
                    progress.media_type = judged(detect(bytes(head)) or _refuse_type(name))
            digest.update(chunk)
            await scan.feed(chunk)
            yield chunk
        if progress.media_type is None and progress.size:
            progress.media_type = judged(detect(bytes(head)) or _refuse_type(name))

    key = storage.new_key()
    try:
        async with scanner.scan() as scan:
            await storage.write(key, checked(scan))
            if progress.size == 0 or progress.media_type is None:
                raise _Refusal(_("“%(name)s” is empty.", name=name))
            verdict = await scan.verdict()
        _judge(verdict, name)
        async with storage.local_file(key) as path:
            flaw = await anyio.to_thread.run_sync(check_structure, path, progress.media_type)
        if flaw is not None:
            raise _Refusal(_flaw_message(flaw, name))
    except _Refusal as refusal:
        await _discard(storage, key)
        raise UploadRefusedError(refusal.message) from None
    except BaseException:
        await _discard(storage, key)
        raise
    return _Received(key, name, progress.media_type, progress.size, digest.hexdigest())


async def _keep(
    session: AsyncSession,
    storage: DocumentStorage,
    received: _Received,
    *,
    case_id: uuid.UUID,
    participant_id: uuid.UUID,
    panel_task_id: uuid.UUID | None,
    field_key: str,
    replaces_id: uuid.UUID | None = None,
) -> Document:
    document = Document(
        id=uuid.uuid4(),
        case_id=case_id,
        participant_id=participant_id,
        panel_task_id=panel_task_id,
        field_key=field_key,
        storage_key=received.key,
        filename=received.name,
        media_type=received.media_type,
        size_bytes=received.size,
        sha256=received.sha256,
        state=DocumentState.UPLOADED,
        replaces_id=replaces_id,
    )
    session.add(document)
    # The file stays only if the row that refers to it is committed.
    on_rollback(session, partial(_discard, storage, received.key))
    await session.flush()
    return document


async def replace_document(
    session: AsyncSession,
    storage: DocumentStorage,
    scanner: Scanner,
    *,
    rejected: Document,
    participant_id: uuid.UUID,
    filename: str,
    chunks: AsyncIterator[bytes],
    limits: Limits,
) -> Document:
    """A new file in place of a document the bank rejected, checked as every upload is.

    The new document answers the same request (task and field) as the old one; the old one
    is kept, marked replaced, as the bank's record of what it rejected. Refused before a byte
    is read when the document cannot be replaced, and again, the file discarded, when another
    request replaced it (or the bank reviewed it again) while this file was arriving.
    """
    title, ended = await _case_of(session, rejected)
    refusal = _replacement_refusal(rejected, participant_id, title=title, ended=ended)
    if refusal:
        raise UploadRefusedError(refusal)
    received = await _receive(storage, scanner, filename=filename, chunks=chunks, limits=limits)
    try:
        # The real guard, on every database: of two replacements racing, only one finds the
        # document still rejected (PostgreSQL makes the second wait for the first's commit,
        # then re-reads the row; SQLite lets one writer in at a time).
        claimed = await session.execute(
            update(Document)
            .where(
                Document.id == rejected.id,
                Document.participant_id == participant_id,
                Document.state == DocumentState.REJECTED,
            )
            .values(state=DocumentState.REPLACED)
            .execution_options(synchronize_session=False)
        )
        if not getattr(claimed, "rowcount", 0):
            await session.refresh(rejected, ["state"])
            raise UploadRefusedError(
                _replacement_refusal(rejected, participant_id, title=title, ended=ended)
                or _("“%(title)s” cannot be replaced just now. Reload the page.", title=title)
            )
    except BaseException:
        await _discard(storage, received.key)
        raise
    # What the UPDATE wrote, without a second UPDATE at the next flush.
    set_committed_value(rejected, "state", DocumentState.REPLACED)
    return await _keep(
        session,
        storage,
        received,
        case_id=rejected.case_id,
        participant_id=participant_id,
        panel_task_id=rejected.panel_task_id,
        field_key=rejected.field_key,
        replaces_id=rejected.id,
    )


async def _case_of(session: AsyncSession, document: Document) -> tuple[str, bool]:
    """The document's title in its case type, and whether its case has ended (a final
    status in the descriptor; that is checked when the file starts, not when it ends)."""
    row = (
        await session.execute(
            select(Case.case_type, Case.status, Case.descriptor_version).where(
                Case.id == document.case_id
            )
        )
    ).one()
    descriptor = await case_types.load(session, row.case_type, row.descriptor_version)
    entry = descriptor.documents.get(document.field_key)
    status = descriptor.statuses.get(row.status)
    return (pick(entry.title) if entry else document.filename), bool(status and status.final)


def _replacement_refusal(
    document: Document, participant_id: uuid.UUID, *, title: str, ended: bool
) -> str | None:
    """Why the participant may not replace this document now, in their language; or None."""
    if document.participant_id != participant_id:
        return _("You can send a new file only for your own documents.")
    if document.state == DocumentState.REPLACED:
        return _("You have already sent a new file in place of “%(title)s”.", title=title)
    if document.state != DocumentState.REJECTED:
        return _("You can send a new file only for a document the bank rejected.")
    if ended:
        return _("The case has ended, so the bank no longer takes documents for it.")
    return None


def _judge(verdict: Verdict, name: str) -> None:
    if verdict.outcome is Outcome.INFECTED:
        log.warning("upload refused: the scanner found %s", verdict.detail)
        raise _Refusal(
            _(
                "“%(name)s” was refused because it contains a virus or other malicious content.",
                name=name,
            )
        )
    if verdict.outcome is not Outcome.CLEAN:
        # Fail closed: a file nobody could scan is not kept.
        log.error("upload refused: the malware scanner is unavailable: %s", verdict.detail)
        raise _Refusal(
            _(
                "We could not check “%(name)s” for viruses just now. "
                "Please try again in a few minutes.",
                name=name,
            )
        )


def _flaw_message(flaw: Flaw, name: str) -> str:
    if flaw is Flaw.ACTIVE_CONTENT:
        return _(
            "“%(name)s” contains scripts or commands that start other programs, which the bank "
            "does not accept. Save it again as a plain PDF (for example by printing it to PDF) "
            "and send the new file.",
            name=name,
        )
    if flaw is Flaw.ENCRYPTED:
        return _("“%(name)s” is protected with a password. Send a copy without one.", name=name)
    if flaw is Flaw.TOO_MANY_PIXELS:
        return _(
            "“%(name)s” is too large a picture (over %(limit)s megapixels). "
            "Send a smaller photo or scan.",
            name=name,
            limit=MAX_IMAGE_PIXELS // 1_000_000,
        )
    return _(
        "“%(name)s” is damaged, or is not really a PDF, JPG or PNG file. "
        "Save the document again and send the new file.",
        name=name,
    )


async def _discard(storage: DocumentStorage, key: str) -> None:
    # Shielded: an upload cancelled while it is refused must still leave nothing behind.
    with anyio.CancelScope(shield=True):
        await storage.delete(key)


def _refuse_type(name: str) -> str:
    raise _Refusal(
        _(
            "“%(name)s” is not a PDF, JPG or PNG file. Send the document in one of these formats.",
            name=name,
        )
    )


def download_name(document: Document) -> str:
    """The file name offered on download, with the extension its real type has."""
    stem = document.filename.rsplit(".", 1)[0] if "." in document.filename else document.filename
    return f"{stem}.{ALLOWED.get(document.media_type, 'bin')}"


async def participant_documents(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> Sequence[Document]:
    result = await session.scalars(
        select(Document)
        .where(
            Document.case_id == case_id,
            Document.participant_id == participant_id,
            Document.state != DocumentState.REMOVED,
        )
        .order_by(Document.uploaded_at)
    )
    return result.all()


async def task_documents(
    session: AsyncSession, task: PanelTask, participant_id: uuid.UUID
) -> dict[str, list[Document]]:
    """The files uploaded to each filepicker of a task, by field key; a replaced one is not
    among them, the file sent in its place is."""
    result = await session.scalars(
        select(Document)
        .where(
            Document.panel_task_id == task.id,
            Document.participant_id == participant_id,
            Document.state.not_in((DocumentState.REMOVED, DocumentState.REPLACED)),
        )
        .order_by(Document.uploaded_at)
    )
    by_field: dict[str, list[Document]] = {}
    for document in result:
        by_field.setdefault(document.field_key, []).append(document)
    return by_field


async def get_participant_document(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID, document_id: uuid.UUID
) -> Document | None:
    return await session.scalar(
        select(Document).where(
            Document.id == document_id,
            Document.case_id == case_id,
            Document.participant_id == participant_id,
            Document.state != DocumentState.REMOVED,
        )
    )


async def remove_document(
    session: AsyncSession, storage: DocumentStorage, document: Document
) -> bool:
    """Take back a file before its task is sent; files already sent stay with the bank.
    False when it is not the participant's to take back.

    The file goes once the removal is committed: until then the row still refers to it.
    """
    if document.state == DocumentState.REPLACED:
        # The bank's record of what it rejected, not the participant's to take back.
        return False
    document.state = DocumentState.REMOVED
    on_commit(session, partial(storage.delete, document.storage_key))
    return True


async def review_document(
    session: AsyncSession,
    document_id: uuid.UUID,
    *,
    accepted: bool,
    note: str | None,
    now: datetime,
) -> Document | None:
    """The bank's verdict on a document, shown to its participant.

    None for a document that was taken back or replaced: the verdict on a replaced one stands
    (the participant answered it), the new document is the one to review.
    """
    # Locked, so a replacement being committed is waited for and seen (on PostgreSQL).
    document = await session.scalar(
        select(Document)
        .where(Document.id == document_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if document is None or document.state in (DocumentState.REMOVED, DocumentState.REPLACED):
        return None
    document.state = DocumentState.ACCEPTED if accepted else DocumentState.REJECTED
    document.review_note = None if accepted else (note or "").strip()[:2000] or None
    document.reviewed_at = now
    return document
