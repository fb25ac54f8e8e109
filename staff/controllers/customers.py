"""The customer card and the staff's notes on cases and customers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.cases.customers import customer_card
from panel_core.cases.notes import (
    MAX_NOTE_CHARS,
    NOTE_NOT_YOURS,
    NOTE_TOO_LATE,
    NoteError,
    add_note,
    customer_notes,
    edit_note,
    editable,
    with_editable,
)
from panel_core.db.models import Participant, StaffNote
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import StaffActor
from panel_web.request import client_of
from staff.controllers.cases import visible_case
from staff.dependencies import StaffController, StaffServices

NOT_FOUND = "Not found"
NOTE_ADDED = N_("The note is added.")
NOTE_SAVED = N_("The note is changed.")
NOTICES = {"note-added": NOTE_ADDED, "note-saved": NOTE_SAVED}


def _now(services: StaffServices) -> datetime:
    return datetime.fromtimestamp(services.clock.now(), UTC)


def _form_page(
    *, action: str, back: str, heading: str, text: str, error: str, status_code: int = 400
) -> Template:
    return Template(
        "staff/note_form.html.j2",
        context={
            "action": action,
            "back": back,
            "heading": heading,
            "text": text,
            "error": error,
            "limit": MAX_NOTE_CHARS,
        },
        status_code=status_code,
    )


def _error(exc: NoteError) -> str:
    return gettext(exc.message, **exc.values) if exc.values else gettext(exc.message)


class CustomersController(StaffController):
    include_in_schema = False

    @get("/customers/{participant_id:uuid}")
    async def card(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        participant_id: FromPath[uuid.UUID],
        notice: FromQuery[str] = "",
    ) -> Template:
        card = await customer_card(db, participant_id)
        if card is None:
            raise NotFoundException(NOT_FOUND)
        audit.record(
            db,
            audit.CUSTOMER_VIEWED,
            participant_id=participant_id,
            actor=staff,
            client=client_of(request),
            cases=len(card.cases),
        )
        await db.commit()
        notes = await customer_notes(db, card.customer_index) if card.customer_index else []
        return Template(
            "staff/customer.html.j2",
            context={
                "staff": staff,
                "card": card,
                "notes": with_editable(
                    notes, staff, _now(services), services.settings.staff_note_edit_window_seconds
                ),
                "note_action": f"/customers/{participant_id}/notes",
                "note_limit": MAX_NOTE_CHARS,
                "note_window_minutes": services.settings.staff_note_edit_window_seconds // 60,
                "message": gettext(NOTICES[notice]) if notice in NOTICES else "",
            },
        )

    @post("/customers/{participant_id:uuid}/notes")
    async def add_customer_note(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        participant_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        person = await db.get(Participant, participant_id)
        if person is None:
            raise NotFoundException(NOT_FOUND)
        back = f"/customers/{participant_id}"
        text = str((await request.form()).get("text", ""))
        if person.pesel_index is None:
            # Purged: no customer to keep a note on any more; the case's own notes remain.
            raise NotFoundException(NOT_FOUND)
        try:
            add_note(db, staff, text, customer_index=person.pesel_index, client=client_of(request))
        except NoteError as exc:
            return _form_page(
                action=f"{back}/notes",
                back=back,
                heading=gettext("Add a note on the customer"),
                text=text,
                error=_error(exc),
            )
        await db.commit()
        return Redirect(f"{back}?notice=note-added#notes", status_code=303)

    @post("/cases/{case_id:uuid}/notes")
    async def add_case_note(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        case = await visible_case(db, staff, case_id)
        back = f"/cases/{case.id}"
        text = str((await request.form()).get("text", ""))
        try:
            add_note(db, staff, text, case_id=case.id, client=client_of(request))
        except NoteError as exc:
            return _form_page(
                action=f"{back}/notes",
                back=back,
                heading=gettext("Add a note on case %(number)s", number=case.case_number),
                text=text,
                error=_error(exc),
            )
        await db.commit()
        return Redirect(f"{back}?notice=note-added#notes", status_code=303)

    @get("/notes/{note_id:uuid}/edit")
    async def edit_page(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        note_id: FromPath[uuid.UUID],
    ) -> Template:
        note = await db.get(StaffNote, note_id)
        if note is None:
            raise NotFoundException(NOT_FOUND)
        back = await _back(db, note)
        error = ""
        if not editable(
            note, staff, _now(services), services.settings.staff_note_edit_window_seconds
        ):
            error = gettext(
                NOTE_NOT_YOURS if note.author_subject != staff.subject else NOTE_TOO_LATE
            )
        return _form_page(
            action=f"/notes/{note.id}",
            back=back,
            heading=gettext("Change the note"),
            text=note.text,
            error=error,
            status_code=200,
        )

    @post("/notes/{note_id:uuid}")
    async def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        note_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        text = str((await request.form()).get("text", ""))
        try:
            note = await edit_note(
                db,
                staff,
                note_id,
                text,
                now=_now(services),
                window_seconds=services.settings.staff_note_edit_window_seconds,
                client=client_of(request),
            )
        except NoteError as exc:
            await db.rollback()
            existing = await db.get(StaffNote, note_id)
            if existing is None:
                raise NotFoundException(NOT_FOUND) from exc
            return _form_page(
                action=f"/notes/{note_id}",
                back=await _back(db, existing),
                heading=gettext("Change the note"),
                text=text,
                error=_error(exc),
            )
        if note is None:
            raise NotFoundException(NOT_FOUND)
        back = await _back(db, note)
        await db.commit()
        return Redirect(f"{back}?notice=note-saved#notes", status_code=303)


async def _back(db: AsyncSession, note: StaffNote) -> str:
    """The page a note is shown on: its case, or the card of one participant it is about."""
    if note.case_id is not None:
        return f"/cases/{note.case_id}"
    person = await db.scalar(
        select(Participant.id).where(Participant.pesel_index == note.customer_index).limit(1)
    )
    return f"/customers/{person}" if person else "/cases/"
