"""Participants download their own documents; the bank's systems review them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Response, Stream, Template
from litestar.status_codes import HTTP_409_CONFLICT
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bff.controllers.case_overview import overview_page
from bff.controllers.channel_api import channel_guard
from bff.dependencies import OPT_SHOWS, ParticipantContext, ParticipantController
from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.cases import closure
from panel_core.db.models import Document, DocumentState, SignatureRecord, TaskState
from panel_core.documents.service import (
    download_name,
    get_participant_document,
    review_document,
)
from panel_core.documents.storage import DocumentStorage
from panel_core.notifications.live import DOCUMENTS_CHANGED, publish_case_update
from panel_core.tasks.service import get_participant_task
from panel_core.tasks.signing import get_participant_signature, participant_signatures
from panel_web.downloads import content_disposition, exact_bytes
from panel_web.multipart import EXCLUDE_FROM_CSRF, read_form
from panel_web.request import client_of
from panel_web.uploads import ReplacementSaver, UploadSaver, filepicker_answers

NOT_FOUND = "Not found"


class DocumentsController(ParticipantController):
    path = "/documents"
    include_in_schema = False
    opt = {OPT_SHOWS: closure.DOCUMENTS}  # noqa: RUF012 - Litestar reads class attributes

    @get("/{document_id:uuid}")
    async def download(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        document_id: FromPath[uuid.UUID],
    ) -> Stream:
        document = await get_participant_document(
            db, participant.case_id, participant.participant_id, document_id
        )
        if document is None:
            # The same answer for someone else's document and for no document at all.
            raise NotFoundException(NOT_FOUND)
        await record_download(request, db, participant, document=str(document.id))
        storage: DocumentStorage = request.app.state.document_storage
        chunks: AsyncIterator[bytes] = storage.read(document.storage_key)
        return Stream(
            chunks,
            media_type=document.media_type,
            headers={
                "Content-Disposition": content_disposition(download_name(document)),
                "Content-Length": str(document.size_bytes),
                "Cache-Control": "no-store",
            },
        )

    @get("/signed/{signature_id:uuid}")
    async def signed(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        signature_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        """The exact bytes the participant signed, as they were when the code was entered."""
        return await signed_document(request, db, participant, signature_id)


async def record_download(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    *,
    document: str | None = None,
    signature: str | None = None,
) -> None:
    client = client_of(request)
    what = {"document": document} if document else {"signature": signature}
    audit.record(
        db,
        audit.DOCUMENT_DOWNLOADED,
        case_id=participant.case_id,
        participant_id=participant.participant_id,
        client=client,
        **what,
    )
    await db.commit()


async def signed_document(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    signature_id: uuid.UUID,
) -> Response[bytes]:
    signature = await get_participant_signature(
        db, participant.case_id, participant.participant_id, signature_id
    )
    if signature is None or not signature.content:
        raise NotFoundException(NOT_FOUND)
    await record_download(request, db, participant, signature=str(signature.id))
    return exact_bytes(
        signature.content,
        media_type=signature.media_type,
        filename=signature.filename,
        sha256=signature.document_sha256,
    )


class SignatureOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    task_id: uuid.UUID
    document_name: str
    sha256: str
    signed_at: datetime
    media_type: str


def signature_out(signature: SignatureRecord) -> SignatureOut:
    return SignatureOut(
        id=signature.id,
        task_id=signature.panel_task_id,
        document_name=signature.document_name,
        sha256=signature.document_sha256,
        signed_at=signature.signed_at,
        media_type=signature.media_type,
    )


class ParticipantSignaturesApiController(ParticipantController):
    path = "/api/participant/signatures"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes
    opt = {OPT_SHOWS: closure.DOCUMENTS}  # noqa: RUF012

    @get("/")
    async def list_signatures(
        self, db: NamedDependency[AsyncSession], participant: NamedDependency[ParticipantContext]
    ) -> list[SignatureOut]:
        signatures = await participant_signatures(
            db, participant.case_id, participant.participant_id
        )
        return [signature_out(s) for s in signatures if s.content]

    @get("/{signature_id:uuid}/content")
    async def content(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        signature_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        return await signed_document(request, db, participant, signature_id)


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    accepted: bool
    # Shown to the participant when the document is rejected.
    note: str = ""


class ReviewOut(msgspec.Struct, rename="camel"):
    document_id: uuid.UUID
    state: str


class DocumentReviewController(Controller):
    """The bank's verdict on a document, from its back office through the channels' API."""

    path = "/api/channel/documents"
    tags = ["channel"]  # noqa: RUF012 - Litestar reads class attributes
    guards = [channel_guard]  # noqa: RUF012

    @post("/{document_id:uuid}/review")
    async def review(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        document_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewIn],
    ) -> ReviewOut:
        state = request.app.state
        document = await review_document(
            db,
            document_id,
            accepted=data.accepted,
            note=data.note,
            now=datetime.fromtimestamp(state.clock.now(), UTC),
        )
        if document is None:
            replaced = await db.scalar(
                select(Document.id).where(
                    Document.id == document_id, Document.state == DocumentState.REPLACED
                )
            )
            if replaced:
                # The rejection stands: the participant answered it with the newer document.
                raise ClientException(
                    status_code=HTTP_409_CONFLICT,
                    detail="The participant replaced this document; review the newer one.",
                )
            raise NotFoundException(NOT_FOUND)
        audit.record(
            db,
            audit.DOCUMENT_REVIEWED,
            case_id=document.case_id,
            participant_id=document.participant_id,
            document=str(document.id),
            accepted=data.accepted,
        )
        activity.record(
            db,
            activity.DOCUMENT_REVIEWED,
            case_id=document.case_id,
            participant_id=document.participant_id,
            accepted=data.accepted,
        )
        await db.commit()
        await publish_case_update(state.redis, document.case_id, DOCUMENTS_CHANGED)
        return ReviewOut(document_id=document.id, state=document.state.value)


class UploadedOut(msgspec.Struct, rename="camel"):
    documents: dict[str, list[str]]
    errors: dict[str, str]


class ReplacementOut(msgspec.Struct, rename="camel"):
    document_id: uuid.UUID
    state: str
    replaces: uuid.UUID


class ParticipantDocumentsApiController(ParticipantController):
    """Every route that takes a participant's files: multipart, streamed straight to storage.

    They sit together so that the app lets large bodies through to them alone; panel_web's
    multipart reader checks the CSRF token before any file.
    """

    path = "/"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes

    # For API clients (and the task page's upload progress): one part per file, named by the
    # filepicker's key.
    @post("/api/participant/tasks/{task_id:uuid}/documents", status_code=201, opt=EXCLUDE_FROM_CSRF)
    async def upload(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> UploadedOut:
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        uploads = UploadSaver(
            request.app.state, db, task, participant.participant_id, client_of(request)
        )
        await read_form(request, uploads)
        if task is None or task.state != TaskState.OPEN:
            raise NotFoundException(NOT_FOUND)
        errors = uploads.errors
        await db.commit()
        await publish_case_update(request.app.state.redis, participant.case_id, DOCUMENTS_CHANGED)
        answers, _missing = await filepicker_answers(db, task, participant.participant_id)
        if errors:
            raise ClientException(detail="Some files were refused.", extra={"errors": errors})
        return UploadedOut(documents=answers, errors=errors)

    # The overview's form for a rejected document (works without JavaScript).
    @post(
        "/documents/{document_id:uuid}/replacement",
        opt=EXCLUDE_FROM_CSRF,
        include_in_schema=False,
    )
    async def replace_page(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        document_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        saver = await receive_replacement(request, db, participant, document_id)
        if saver.document is None:
            error = saver.error or ""
            return await overview_page(
                request,
                db,
                participant,
                replacement_errors={str(document_id): error},
                status_code=400,
            )
        return Redirect(path="/case/?replaced=1", status_code=303)

    @post(
        "/api/participant/documents/{document_id:uuid}/replacement",
        status_code=201,
        opt=EXCLUDE_FROM_CSRF,
    )
    async def replace(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        document_id: FromPath[uuid.UUID],
    ) -> ReplacementOut:
        """A new file, in a part named ``file``, in place of a document the bank rejected."""
        saver = await receive_replacement(request, db, participant, document_id)
        if saver.document is None:
            raise ClientException(detail=saver.error or "")
        return ReplacementOut(
            document_id=saver.document.id,
            state=saver.document.state.value,
            replaces=document_id,
        )


async def receive_replacement(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    document_id: uuid.UUID,
) -> ReplacementSaver:
    """Read the form, keeping its file in place of the document if it may be replaced;
    committed and announced when it was."""
    rejected = await get_participant_document(
        db, participant.case_id, participant.participant_id, document_id
    )
    saver = ReplacementSaver(
        request.app.state, db, rejected, participant.participant_id, client_of(request)
    )
    await read_form(request, saver)
    if rejected is None:
        # The same answer for someone else's document and for no document at all.
        raise NotFoundException(NOT_FOUND)
    if saver.document is None:
        await db.rollback()
        return saver
    await db.commit()
    await publish_case_update(request.app.state.redis, participant.case_id, DOCUMENTS_CHANGED)
    return saver
