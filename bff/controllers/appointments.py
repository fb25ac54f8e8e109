"""A participant's appointments: the calendar file, and asking the bank to move one.

Only the participant the appointment is with reaches it: anyone else's, in this case or
another, answers 404 like one that does not exist. After the case closes these routes follow
the overview, which lists appointments unless only the status is still shown.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template
from sqlalchemy.ext.asyncio import AsyncSession

from bff.controllers.participant_pages import session_context
from bff.dependencies import OPT_SHOWS, ParticipantContext, ParticipantController
from panel_core.appointments import ics
from panel_core.appointments.fields import move_fields
from panel_core.appointments.messages import where_text
from panel_core.appointments.service import (
    APPOINTMENTS_CHANGED,
    MoveForm,
    changeable,
    kind_label,
    open_request,
    request_move,
    when_range,
)
from panel_core.appointments.views import participant_appointment
from panel_core.audit import log as audit
from panel_core.cases import closure
from panel_core.db.models import Appointment, Case
from panel_core.identity.actors import ParticipantActor
from panel_core.notifications.live import publish_case_update
from panel_web.downloads import content_disposition
from panel_web.forms import form_values
from panel_web.request import client_of

NOT_FOUND = "Not found"


async def _own(
    db: AsyncSession, participant: ParticipantContext, appointment_id: uuid.UUID
) -> Appointment:
    appointment = await participant_appointment(
        db, participant.case_id, participant.participant_id, appointment_id
    )
    if appointment is None:
        raise NotFoundException(NOT_FOUND)
    return appointment


def _actor(participant: ParticipantContext) -> ParticipantActor:
    return ParticipantActor(case_id=participant.case_id, participant_id=participant.participant_id)


class ParticipantAppointmentsController(ParticipantController):
    path = "/appointments"
    include_in_schema = False
    opt = {OPT_SHOWS: closure.DOCUMENTS}  # noqa: RUF012 - Litestar reads class attributes

    @get("/{appointment_id:uuid}/calendar.ics")
    async def calendar_file(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        appointment_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        appointment = await _own(db, participant, appointment_id)
        case = await db.get(Case, participant.case_id)
        if case is None:
            raise NotFoundException(NOT_FOUND)
        body = ics.calendar_file(appointment, case, request.app.state.settings.public_base_url)
        name = ics.file_name(case, appointment)
        audit.record(
            db,
            audit.APPOINTMENT_CALENDAR_DOWNLOADED,
            actor=_actor(participant),
            client=client_of(request),
            appointment=str(appointment.id),
        )
        await db.commit()
        return Response(
            body,
            media_type=ics.MEDIA_TYPE,
            headers={
                "Content-Disposition": content_disposition(name),
                "Cache-Control": "no-store",
            },
        )

    @get("/{appointment_id:uuid}/move")
    async def move_page(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        appointment_id: FromPath[uuid.UUID],
        sent: FromQuery[str] = "",
    ) -> Template:
        appointment = await _own(db, participant, appointment_id)
        return await _move_page(
            request, db, participant, appointment, MoveForm(), {}, sent=sent == "1"
        )

    @post("/{appointment_id:uuid}/move")
    async def ask_to_move(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        appointment_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        appointment = await _own(db, participant, appointment_id)
        form = MoveForm.from_fields(form_values(await request.form()))
        now = datetime.fromtimestamp(request.app.state.clock.now(), UTC)
        if not changeable(appointment, now) or await open_request(db, appointment.id):
            return await _move_page(request, db, participant, appointment, form, {}, status=409)
        errors = form.errors()
        if errors:
            return await _move_page(request, db, participant, appointment, form, errors, status=400)
        made = await request_move(
            db, appointment, form, _actor(participant), now, client_of(request)
        )
        if made is None:
            return await _move_page(request, db, participant, appointment, form, {}, status=409)
        await publish_case_update(
            request.app.state.redis, participant.case_id, APPOINTMENTS_CHANGED
        )
        return Redirect(f"/appointments/{appointment.id}/move?sent=1", status_code=303)


async def _move_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    appointment: Appointment,
    form: MoveForm,
    errors: dict[str, str],
    *,
    sent: bool = False,
    status: int = 200,
) -> Template:
    now = datetime.fromtimestamp(request.app.state.clock.now(), UTC)
    return Template(
        "appointment_move.html.j2",
        context={
            "appointment": appointment,
            "kind": kind_label(appointment.kind),
            "when": when_range(appointment),
            "where": where_text(appointment),
            "asked": await open_request(db, appointment.id),
            "changeable": changeable(appointment, now),
            "fields": move_fields(form, errors),
            "errors": errors,
            "sent": sent,
            "participant_session": session_context(request, participant),
        },
        status_code=status,
    )
