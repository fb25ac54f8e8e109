"""Staff notes on a case or on a customer: plain text, for staff only, audited.

A note belongs either to one case or to one customer across their cases (the keyed blind
index of their PESEL: the panel never keeps the number). Its author may correct it within
a short window (``Settings.staff_note_edit_window_seconds``) after writing it; after that it
stands as written, and what is added is a new note. The audit log records who wrote or
changed which note and the SHA-256 of its text, never the text.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.db.models import StaffNote
from panel_core.i18n import N_
from panel_core.identity.actors import Client, StaffActor
from panel_core.plain_text import plain_text

MAX_NOTE_CHARS = 4000

NOTE_EMPTY = N_("Write the note before adding it.")
NOTE_TOO_LONG = N_("A note can be at most %(limit)s characters long.")
NOTE_NOT_YOURS = N_("Only the author may change a note.")
NOTE_TOO_LATE = N_("This note can no longer be changed: add a new one instead.")


class NoteError(ValueError):
    """The note was not stored; ``message`` (a msgid) says why, for the page."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values


def note_text(raw: str) -> str:
    """The text as it is kept: line breaks as typed (one kind), no other control characters."""
    kept = plain_text(raw)
    if not kept:
        raise NoteError(NOTE_EMPTY)
    if len(kept) > MAX_NOTE_CHARS:
        raise NoteError(NOTE_TOO_LONG, limit=MAX_NOTE_CHARS)
    return kept


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def add_note(
    session: AsyncSession,
    staff: StaffActor,
    text: str,
    *,
    case_id: uuid.UUID | None = None,
    customer_index: str | None = None,
    client: Client | None = None,
) -> StaffNote:
    if (case_id is None) == (customer_index is None):
        raise ValueError("a note is on a case or on a customer")
    note = StaffNote(
        id=uuid.uuid4(),
        case_id=case_id,
        customer_index=customer_index,
        author_subject=staff.subject,
        author_username=staff.username,
        author_name=staff.name,
        text=note_text(text),
        created_at=datetime.now(UTC),
    )
    session.add(note)
    audit.record(
        session,
        audit.NOTE_ADDED,
        case_id=case_id,
        actor=staff,
        client=client,
        note=str(note.id),
        on="case" if case_id is not None else "customer",
        sha256=_digest(note.text),
    )
    return note


def editable(note: StaffNote, staff: StaffActor, now: datetime, window_seconds: int) -> bool:
    """Whether ``staff`` may still change ``note`` at ``now``."""
    return note.author_subject == staff.subject and now < _created(note) + timedelta(
        seconds=window_seconds
    )


def with_editable(
    notes: list[StaffNote], staff: StaffActor, now: datetime, window_seconds: int
) -> list[tuple[StaffNote, bool]]:
    """Each note with whether ``staff`` may still change it, for the page."""
    return [(note, editable(note, staff, now, window_seconds)) for note in notes]


def _created(note: StaffNote) -> datetime:
    created = note.created_at
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


async def edit_note(
    session: AsyncSession,
    staff: StaffActor,
    note_id: uuid.UUID,
    text: str,
    *,
    now: datetime,
    window_seconds: int,
    client: Client | None = None,
) -> StaffNote | None:
    """Correct a note; None when there is no such note. The row is locked, so two
    corrections at once are applied one after the other, each audited."""
    note = await session.scalar(select(StaffNote).where(StaffNote.id == note_id).with_for_update())
    if note is None:
        return None
    if note.author_subject != staff.subject:
        raise NoteError(NOTE_NOT_YOURS)
    if not editable(note, staff, now, window_seconds):
        raise NoteError(NOTE_TOO_LATE)
    before = _digest(note.text)
    note.text = note_text(text)
    note.edited_at = now
    audit.record(
        session,
        audit.NOTE_EDITED,
        case_id=note.case_id,
        actor=staff,
        client=client,
        note=str(note.id),
        before=before,
        sha256=_digest(note.text),
    )
    return note


async def case_notes(session: AsyncSession, case_id: uuid.UUID) -> list[StaffNote]:
    """The notes on a case, newest first."""
    result = await session.scalars(
        select(StaffNote)
        .where(StaffNote.case_id == case_id)
        .order_by(StaffNote.created_at.desc(), StaffNote.id)
    )
    return list(result)


async def customer_notes(session: AsyncSession, customer_index: str) -> list[StaffNote]:
    """The notes on a customer, newest first."""
    result = await session.scalars(
        select(StaffNote)
        .where(StaffNote.customer_index == customer_index)
        .order_by(StaffNote.created_at.desc(), StaffNote.id)
    )
    return list(result)
