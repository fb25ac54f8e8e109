"""Appointments as the pages show them: a participant's own, and a case's for staff."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments.messages import where_text
from panel_core.appointments.service import (
    changeable,
    ends_at,
    kind_label,
    may_book,
    when_range,
)
from panel_core.appointments.times import aware
from panel_core.cases.view import CaseView, mask_phone
from panel_core.db.models import (
    Appointment,
    AppointmentChangeRequest,
    AppointmentKind,
    AppointmentState,
)
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import StaffActor
from panel_core.settings import Settings

RESOLUTIONS = {
    "rescheduled": N_("moved to a new time"),
    "cancelled": N_("cancelled"),
}


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    appointment: Appointment
    kind_label: str
    when: str
    # The branch's address, or who calls whom.
    where: str
    upcoming: bool
    cancelled: bool
    # May still be moved or cancelled (staff), or asked to be moved (the participant).
    changeable: bool
    open_request: AppointmentChangeRequest | None
    # The requests the bank answered, with how.
    answered: list[tuple[AppointmentChangeRequest, str]]
    # For staff: whom it is with.
    who: str = ""

    @property
    def starts_at(self) -> datetime:
        return aware(self.appointment.starts_at)

    @property
    def ends_at(self) -> datetime:
        return ends_at(self.appointment)


def resolution_label(request: AppointmentChangeRequest) -> str:
    return gettext(RESOLUTIONS.get(request.resolution or "", request.resolution or ""))


async def _requests(
    session: AsyncSession, appointments: list[Appointment]
) -> dict[uuid.UUID, list[AppointmentChangeRequest]]:
    found: dict[uuid.UUID, list[AppointmentChangeRequest]] = {a.id: [] for a in appointments}
    if not appointments:
        return found
    rows = await session.scalars(
        select(AppointmentChangeRequest)
        .where(AppointmentChangeRequest.appointment_id.in_(list(found)))
        .order_by(AppointmentChangeRequest.created_at)
    )
    for request in rows:
        found[request.appointment_id].append(request)
    return found


def _rows(
    appointments: list[Appointment],
    requests: Mapping[uuid.UUID, list[AppointmentChangeRequest]],
    now: datetime,
    who: Mapping[uuid.UUID, str],
    where: Mapping[uuid.UUID, str],
) -> list[AppointmentRow]:
    rows = []
    for appointment in appointments:
        asked = requests.get(appointment.id, [])
        rows.append(
            AppointmentRow(
                appointment=appointment,
                kind_label=kind_label(appointment.kind),
                when=when_range(appointment),
                where=where.get(appointment.id) or where_text(appointment),
                upcoming=ends_at(appointment) > now,
                cancelled=appointment.state == AppointmentState.CANCELLED,
                changeable=changeable(appointment, now),
                open_request=next((r for r in asked if r.resolved_at is None), None),
                answered=[(r, resolution_label(r)) for r in asked if r.resolved_at is not None],
                who=who.get(appointment.participant_id, ""),
            )
        )
    # What is still to come first, soonest first; then what is past, latest first.
    upcoming = sorted((r for r in rows if r.upcoming), key=lambda r: r.starts_at)
    past = sorted((r for r in rows if not r.upcoming), key=lambda r: r.starts_at, reverse=True)
    return [*upcoming, *past]


async def participant_appointments(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID, now: datetime
) -> list[AppointmentRow]:
    """The participant's own appointments; the other participants' are not theirs to see."""
    appointments = list(
        await session.scalars(
            select(Appointment).where(
                Appointment.case_id == case_id, Appointment.participant_id == participant_id
            )
        )
    )
    return _rows(appointments, await _requests(session, appointments), now, {}, {})


async def participant_appointment(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID, appointment_id: uuid.UUID
) -> Appointment | None:
    """One of the participant's own appointments; None for anyone else's, as for none."""
    found: Appointment | None = await session.scalar(
        select(Appointment).where(
            Appointment.id == appointment_id,
            Appointment.case_id == case_id,
            Appointment.participant_id == participant_id,
        )
    )
    return found


@dataclass(frozen=True, slots=True)
class AppointmentsSection:
    """The staff case page's appointments."""

    rows: list[AppointmentRow]
    may_book: bool
    # Requests to move an appointment nobody has answered yet.
    waiting: int


def staff_where(appointment: Appointment, phones: Mapping[uuid.UUID, str | None]) -> str:
    """Where, for staff: a call to the participant's own number shows it masked, as the
    case page shows every participant's number."""
    if appointment.kind == AppointmentKind.PHONE and not appointment.phone_e164:
        masked = mask_phone(phones.get(appointment.participant_id))
        return gettext("the participant's own number %(phone)s", phone=masked)
    return where_text(appointment)


async def case_appointments(
    session: AsyncSession, view: CaseView, staff: StaffActor, settings: Settings, now: datetime
) -> AppointmentsSection:
    appointments = list(
        await session.scalars(select(Appointment).where(Appointment.case_id == view.case.id))
    )
    requests = await _requests(session, appointments)
    labels = {row.participant.id: row.label for row in view.participants}
    phones = {row.participant.id: row.participant.phone_e164 for row in view.participants}
    where = {a.id: staff_where(a, phones) for a in appointments}
    rows = _rows(appointments, requests, now, labels, where)
    return AppointmentsSection(
        rows=rows,
        may_book=may_book(staff, settings),
        waiting=sum(1 for r in rows if r.open_request is not None and r.changeable),
    )
