"""Appointments from the case page (book, move, cancel) and the staff calendar.

Booking, moving and cancelling are for the roles ``may_book`` names (panel_core/appointments/
service.py); anyone else gets 403 for the pages and the forms alike. The calendar is every
member of staff's own; a team manager may switch it to their team.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments import service
from panel_core.appointments.calendar import (
    by_day,
    entries_between,
    holders_for,
    team_of,
)
from panel_core.appointments.fields import appointment_fields
from panel_core.appointments.service import (
    NOT_ALLOWED,
    AppointmentForm,
    changeable,
    kind_label,
    may_book,
    open_request,
    open_to_booking,
    when_range,
)
from panel_core.appointments.times import day_label, day_of, day_start, days_between, week_of
from panel_core.appointments.views import staff_where
from panel_core.audit import log as audit
from panel_core.cases.view import CaseView, case_view, mask_phone
from panel_core.db.models import Appointment, Case
from panel_core.i18n import gettext
from panel_core.identity.actors import StaffActor
from panel_core.notifications.live import publish_case_update
from panel_web.forms import form_values
from panel_web.request import client_of
from staff.controllers.cases import NOT_FOUND, visible_case
from staff.dependencies import StaffController, StaffServices

AGENDA_DAYS = 30


def _now(services: StaffServices) -> datetime:
    return datetime.fromtimestamp(services.clock.now(), UTC)


def _allowed(staff: StaffActor, services: StaffServices) -> None:
    if not may_book(staff, services.settings):
        raise PermissionDeniedException(NOT_ALLOWED)


async def _appointment(
    db: AsyncSession, case: Case, appointment_id: uuid.UUID, *, changing: bool = False
) -> Appointment:
    """The case's appointment; held until the request's transaction ends when it is being
    changed, so two members of staff moving it at once are told in turn."""
    query = select(Appointment).where(
        Appointment.id == appointment_id, Appointment.case_id == case.id
    )
    appointment = await db.scalar(query.with_for_update() if changing else query)
    if appointment is None:
        raise NotFoundException(NOT_FOUND)
    return appointment


def _participants(view: CaseView) -> list[tuple[str, str]]:
    return [(str(row.participant.id), row.label) for row in view.participants]


class AppointmentsController(StaffController):
    include_in_schema = False
    path = "/cases/{case_id:uuid}/appointments"

    @get("/new")
    async def new(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
    ) -> Template:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        view = await case_view(db, case)
        form = AppointmentForm(holder=staff.username)
        if len(view.participants) == 1:
            form.participant = str(view.participants[0].participant.id)
        return await self._booking_page(db, services, staff, view, form, {})

    @post("/")
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        view = await case_view(db, case)
        form = AppointmentForm.from_fields(form_values(await request.form()))
        now = _now(services)
        if not open_to_booking(case, now):
            return await self._booking_page(db, services, staff, view, form, {})
        holders = await holders_for(db, staff)
        checked = service.check_form(form, case=case, now=now, holders=holders)
        if checked.booking is None:
            return await self._booking_page(
                db, services, staff, view, form, checked.errors, status_code=400
            )
        await service.book(
            db, case, checked.booking, staff, services.settings, now, client_of(request)
        )
        await db.commit()
        await publish_case_update(services.redis, case.id, service.APPOINTMENTS_CHANGED)
        return Redirect(f"/cases/{case.id}?appointment=booked#appointments", status_code=303)

    async def _booking_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        view: CaseView,
        form: AppointmentForm,
        errors: dict[str, str],
        *,
        status_code: int = 200,
    ) -> Template:
        holders = await holders_for(db, staff)
        closed = not open_to_booking(view.case, _now(services))
        return Template(
            "staff/appointment_form.html.j2",
            context={
                "staff": staff,
                "case": view.case,
                "case_type_name": view.case_type_name,
                "heading": gettext("Book an appointment"),
                "action": f"/cases/{view.case.id}/appointments/",
                "submit": gettext("Book and tell the participant"),
                "fields": appointment_fields(
                    form,
                    errors,
                    participants=_participants(view),
                    holders=holders if staff.manager else None,
                    own_number=", ".join(
                        f"{row.label}: {row.phone}" for row in view.participants if row.phone
                    ),
                ),
                "errors": errors,
                "closed": closed,
                "appointment": None,
                "move_request": None,
            },
            status_code=409 if closed else status_code,
        )

    @get("/{appointment_id:uuid}/reschedule")
    async def edit(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        appointment_id: FromPath[uuid.UUID],
    ) -> Template:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        appointment = await _appointment(db, case, appointment_id)
        return await self._moving_page(
            db, services, staff, case, appointment, AppointmentForm.of(appointment), {}
        )

    @post("/{appointment_id:uuid}/reschedule")
    async def move(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        appointment_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        appointment = await _appointment(db, case, appointment_id, changing=True)
        now = _now(services)
        form = AppointmentForm.from_fields(form_values(await request.form()))
        form.kind = appointment.kind.value
        if not changeable(appointment, now):
            # The page says so in place of the form.
            return await self._moving_page(
                db, services, staff, case, appointment, form, {}, status_code=409
            )
        holders = await self._holders(db, staff, appointment)
        checked = service.check_form(form, case=case, now=now, holders=holders, fixed=appointment)
        if checked.booking is None:
            return await self._moving_page(
                db, services, staff, case, appointment, form, checked.errors, status_code=400
            )
        await service.reschedule(
            db, appointment, checked.booking, staff, services.settings, now, client_of(request)
        )
        await db.commit()
        await publish_case_update(services.redis, case.id, service.APPOINTMENTS_CHANGED)
        return Redirect(f"/cases/{case.id}?appointment=moved#appointments", status_code=303)

    async def _holders(
        self, db: AsyncSession, staff: StaffActor, appointment: Appointment
    ) -> dict[str, str]:
        # Whoever may move an appointment may leave it with the colleague who holds it.
        holders = await holders_for(db, staff)
        holders.setdefault(appointment.staff_username, appointment.staff_name)
        return holders

    async def _moving_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        case: Case,
        appointment: Appointment,
        form: AppointmentForm,
        errors: dict[str, str],
        *,
        status_code: int = 200,
    ) -> Template:
        view = await case_view(db, case)
        label = {row.participant.id: row.label for row in view.participants}
        phone = {row.participant.id: row.participant.phone_e164 for row in view.participants}
        now = _now(services)
        return Template(
            "staff/appointment_form.html.j2",
            context={
                "staff": staff,
                "case": case,
                "case_type_name": view.case_type_name,
                "heading": gettext("Move the appointment"),
                "action": f"/cases/{case.id}/appointments/{appointment.id}/reschedule",
                "submit": gettext("Move it and tell the participant"),
                "fields": appointment_fields(
                    form,
                    errors,
                    participants=None,
                    holders=await self._holders(db, staff, appointment) if staff.manager else None,
                    own_number=mask_phone(phone.get(appointment.participant_id)),
                    moving=True,
                ),
                "errors": errors,
                "closed": not changeable(appointment, now),
                "appointment": appointment,
                "appointment_facts": {
                    "who": label.get(appointment.participant_id, ""),
                    "kind": kind_label(appointment.kind),
                    "when": when_range(appointment),
                    "where": staff_where(appointment, phone),
                },
                "move_request": await open_request(db, appointment.id),
            },
            status_code=status_code,
        )

    @get("/{appointment_id:uuid}/cancel")
    async def confirm_cancel(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        appointment_id: FromPath[uuid.UUID],
    ) -> Template:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        appointment = await _appointment(db, case, appointment_id)
        return await self._cancel_page(db, services, staff, case, appointment)

    async def _cancel_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        case: Case,
        appointment: Appointment,
        *,
        status_code: int = 200,
    ) -> Template:
        view = await case_view(db, case)
        label = {row.participant.id: row.label for row in view.participants}
        phone = {row.participant.id: row.participant.phone_e164 for row in view.participants}
        return Template(
            "staff/appointment_cancel.html.j2",
            context={
                "staff": staff,
                "case": case,
                "case_type_name": view.case_type_name,
                "appointment": appointment,
                "appointment_facts": {
                    "who": label.get(appointment.participant_id, ""),
                    "kind": kind_label(appointment.kind),
                    "when": when_range(appointment),
                    "where": staff_where(appointment, phone),
                },
                "closed": not changeable(appointment, _now(services)),
                "move_request": await open_request(db, appointment.id),
            },
            status_code=status_code,
        )

    @post("/{appointment_id:uuid}/cancel")
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        appointment_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        case = await visible_case(db, staff, case_id)
        _allowed(staff, services)
        appointment = await _appointment(db, case, appointment_id, changing=True)
        now = _now(services)
        if not changeable(appointment, now):
            return await self._cancel_page(db, services, staff, case, appointment, status_code=409)
        await service.cancel(db, appointment, staff, services.settings, now, client_of(request))
        await db.commit()
        await publish_case_update(services.redis, case.id, service.APPOINTMENTS_CHANGED)
        return Redirect(f"/cases/{case.id}?appointment=cancelled#appointments", status_code=303)


class CalendarView:
    WEEK = "week"
    AGENDA = "agenda"


def _monday(text: str, today: date) -> date:
    try:
        return week_of(date.fromisoformat(text.strip())) if text.strip() else week_of(today)
    except ValueError:
        return week_of(today)


class CalendarController(StaffController):
    include_in_schema = False
    path = "/calendar"

    @get("/")
    async def calendar(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        view: FromQuery[str] = CalendarView.WEEK,
        week: FromQuery[str] = "",
        who: FromQuery[str] = "",
    ) -> Template:
        now = _now(services)
        today = day_of(now)
        agenda = view == CalendarView.AGENDA
        team = staff.manager and who == "team"
        people = await team_of(db, staff) if team else {staff.username: staff.name}
        if agenda:
            first, last = today, today + timedelta(days=AGENDA_DAYS)
        else:
            first = _monday(week, today)
            last = first + timedelta(days=7)
        days = days_between(first, last)
        entries = await entries_between(db, people, day_start(first), day_start(last), now)
        audit.record(
            db,
            audit.CALENDAR_VIEWED,
            actor=staff,
            client=client_of(request),
            view=CalendarView.AGENDA if agenda else CalendarView.WEEK,
            start=first.isoformat(),
            team=team,
        )
        await db.commit()
        week_start = first if not agenda else week_of(today)
        return Template(
            "staff/calendar.html.j2",
            context={
                "staff": staff,
                "agenda": agenda,
                "team": team,
                "people": people,
                "days": by_day(entries, days, today, keep_empty=not agenda),
                "count": len(entries),
                "first": first,
                "last": last - timedelta(days=1),
                "first_label": day_label(first),
                "last_label": day_label(last - timedelta(days=1)),
                "week": week_start.isoformat(),
                "previous_week": (week_start - timedelta(days=7)).isoformat(),
                "next_week": (week_start + timedelta(days=7)).isoformat(),
                "this_week": week_of(today).isoformat(),
                "who": "team" if team else "",
                "agenda_days": AGENDA_DAYS,
            },
        )
