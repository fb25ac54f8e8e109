"""Booking, moving and cancelling a participant's appointment, and their request to move it.

Who may book: members of staff with one of ``PANEL_STAFF_APPOINTMENT_ROLES`` (branch advisers
and call-centre agents by default) and team managers. Whoever may book may also move and
cancel any appointment of a case: advisers stand in for one another. An appointment is held
by one member of staff (it is in their calendar): the one who books it, or, when a team
manager books, someone of the manager's team.

Every change is written with its audit event and its SMS in one transaction; the SMS go
through the outbox, keyed by the appointment and its sequence, so a repeated request tells
the participant nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.appointments.messages import tell_participant
from panel_core.appointments.times import (
    DASH,
    TimeProblem,
    aware,
    clock_text,
    day_of,
    local,
    parse_clock,
    parse_day,
    remind_at,
    when_text,
)
from panel_core.appointments.times import local_moment as to_moment
from panel_core.audit import log as audit
from panel_core.cases.closure import participant_access
from panel_core.db.models import (
    Appointment,
    AppointmentChangeRequest,
    AppointmentKind,
    AppointmentState,
    Case,
)
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import Client, ParticipantActor, StaffActor
from panel_core.identity.phone import PhoneError, normalize_phone
from panel_core.settings import Settings

# Live updates: the participant's overview and the case page refresh their appointments.
APPOINTMENTS_CHANGED = "appointments-changed"

DURATIONS = (15, 30, 45, 60, 90, 120)
DEFAULT_DURATION = 30
MAX_SUBJECT = 200
MAX_PLACE = 300
MAX_MESSAGE = 1000
MAX_PREFERRED = 500
BOOK_AHEAD_DAYS = 366

KIND_LABELS = {
    AppointmentKind.BRANCH: N_("Branch visit"),
    AppointmentKind.PHONE: N_("Phone call"),
}
NOT_ALLOWED = N_("Only branch advisers, call-centre agents and team managers book appointments.")
NO_PARTICIPANT = N_("Choose who the appointment is with.")
NO_KIND = N_("Choose a branch visit or a phone call.")
IN_THE_PAST = N_("Choose a time in the future.")
TOO_FAR = N_("Appointments can be booked up to a year ahead.")
NO_DURATION = N_("Choose how long it takes.")
NO_PLACE = N_("Enter the branch's address.")
PLACE_TOO_LONG = N_("Keep the address to %(max)s characters.")
BAD_PHONE = N_("Enter the phone number with its country code, e.g. +48 600 700 800.")
NO_SUBJECT = N_("Say what the appointment is about.")
SUBJECT_TOO_LONG = N_("Keep the subject to %(max)s characters.")
NO_HOLDER = N_("Choose who at the bank holds the appointment.")
CASE_CLOSED = N_("The participants no longer have access to this case: book nothing new in it.")
NO_MESSAGE = N_("Tell the bank why the time does not suit you.")
MESSAGE_TOO_LONG = N_("Keep your message to %(max)s characters.")
PREFERRED_TOO_LONG = N_("Keep the times to %(max)s characters.")


def appointment_roles(settings: Settings) -> frozenset[str]:
    return frozenset(r.strip() for r in settings.staff_appointment_roles.split(",") if r.strip())


def may_book(actor: StaffActor, settings: Settings) -> bool:
    """Whether the member of staff books, moves and cancels appointments."""
    return actor.manager or bool(actor.roles & appointment_roles(settings))


def kind_label(kind: AppointmentKind) -> str:
    return gettext(KIND_LABELS[kind])


def ends_at(appointment: Appointment) -> datetime:
    return aware(appointment.starts_at) + timedelta(minutes=appointment.duration_minutes)


def when_range(appointment: Appointment) -> str:
    """From when to when, in local time; the end's date too when it is another day."""
    start, end = aware(appointment.starts_at), ends_at(appointment)
    until = clock_text(end) if day_of(end) == day_of(start) else when_text(end)
    return f"{when_text(start)}{DASH}{until}"


@dataclass(slots=True)
class AppointmentForm:
    """The booking form's fields as typed, so a refused form comes back as it was sent."""

    participant: str = ""
    kind: str = ""
    date: str = ""
    time: str = ""
    duration: str = str(DEFAULT_DURATION)
    place: str = ""
    phone: str = ""
    subject: str = ""
    holder: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> AppointmentForm:
        def text(name: str, limit: int = 1000) -> str:
            value = fields.get(name)
            return str(value).strip()[:limit] if isinstance(value, str) else ""

        return cls(
            participant=text("participant", 64),
            kind=text("kind", 16),
            date=text("date", 32),
            time=text("time", 16),
            duration=text("duration", 8),
            place=text("place", MAX_PLACE + 50),
            phone=text("phone", 32),
            subject=text("subject", MAX_SUBJECT + 50),
            holder=text("holder", 255),
        )

    @classmethod
    def of(cls, appointment: Appointment) -> AppointmentForm:
        """The form of an appointment as it is, to be changed."""
        start = local(appointment.starts_at)
        return cls(
            participant=str(appointment.participant_id),
            kind=appointment.kind.value,
            date=start.date().isoformat(),
            time=start.strftime("%H:%M"),
            duration=str(appointment.duration_minutes),
            place=appointment.place or "",
            phone=appointment.phone_e164 or "",
            subject=appointment.subject,
            holder=appointment.staff_username,
        )


@dataclass(frozen=True, slots=True)
class Booking:
    """A checked form: what an appointment becomes."""

    participant_id: uuid.UUID
    kind: AppointmentKind
    starts_at: datetime
    duration_minutes: int
    place: str | None
    phone_e164: str | None
    subject: str
    holder: str
    holder_name: str


@dataclass(slots=True)
class Checked:
    booking: Booking | None
    # Translated messages by field name, in the order of the form.
    errors: dict[str, str] = field(default_factory=dict)


def check_form(
    form: AppointmentForm,
    *,
    case: Case,
    now: datetime,
    holders: Mapping[str, str],
    fixed: Appointment | None = None,
) -> Checked:
    """Check what staff typed. ``holders`` are the people the appointment may be held by
    (username: name); ``fixed`` is the appointment being moved, whose participant and kind
    stay."""
    errors: dict[str, str] = {}
    people = {str(p.id): p.id for p in case.participants}
    participant_id = fixed.participant_id if fixed else people.get(form.participant)
    if participant_id is None:
        errors["participant"] = gettext(NO_PARTICIPANT)
    kind: AppointmentKind | None = fixed.kind if fixed else None
    if kind is None:
        try:
            kind = AppointmentKind(form.kind)
        except ValueError:
            errors["kind"] = gettext(NO_KIND)
    starts_at = None
    try:
        day = parse_day(form.date)
    except TimeProblem as problem:
        errors["date"] = problem.translated()
        day = None
    try:
        clock = parse_clock(form.time)
    except TimeProblem as problem:
        errors["time"] = problem.translated()
        clock = None
    if day is not None and clock is not None:
        try:
            starts_at = to_moment(day, clock)
        except TimeProblem as problem:
            errors["time"] = problem.translated()
    if starts_at is not None:
        if starts_at <= now:
            errors["date"] = gettext(IN_THE_PAST)
        elif starts_at > now + timedelta(days=BOOK_AHEAD_DAYS):
            errors["date"] = gettext(TOO_FAR)
    duration = int(form.duration) if form.duration.isdigit() else 0
    if duration not in DURATIONS:
        errors["duration"] = gettext(NO_DURATION)
    place = " ".join(form.place.split()) or None
    phone = None
    if kind is AppointmentKind.BRANCH:
        if place is None:
            errors["place"] = gettext(NO_PLACE)
        elif len(place) > MAX_PLACE:
            errors["place"] = gettext(PLACE_TOO_LONG, max=MAX_PLACE)
    elif kind is AppointmentKind.PHONE:
        place = None
        if form.phone:
            try:
                phone = normalize_phone(form.phone)
            except PhoneError:
                errors["phone"] = gettext(BAD_PHONE)
    subject = " ".join(form.subject.split())
    if not subject:
        errors["subject"] = gettext(NO_SUBJECT)
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = gettext(SUBJECT_TOO_LONG, max=MAX_SUBJECT)
    holder = form.holder or (fixed.staff_username if fixed else "")
    if not holder and len(holders) == 1:
        # Whoever books for nobody but themselves is not asked.
        holder = next(iter(holders))
    if holder not in holders:
        errors["holder"] = gettext(NO_HOLDER)
    if errors or participant_id is None or kind is None or starts_at is None:
        return Checked(None, errors)
    return Checked(
        Booking(
            participant_id=participant_id,
            kind=kind,
            starts_at=starts_at,
            duration_minutes=duration,
            place=place,
            phone_e164=phone,
            subject=subject,
            holder=holder,
            holder_name=holders[holder],
        )
    )


def open_to_booking(case: Case, now: datetime) -> bool:
    """A case whose participants can still sign in takes appointments; after that nobody
    could read one, and its data is on its way to the purge."""
    return participant_access(case, now) is not None


def _reminder(starts_at: datetime, now: datetime, settings: Settings) -> datetime | None:
    due = remind_at(starts_at, settings.appointment_reminder_hour)
    # Booked after the reminder's hour: the booking's own SMS is the reminder.
    return due if due > now else None


def _audit_details(appointment: Appointment) -> dict[str, Any]:
    return {
        "appointment": str(appointment.id),
        "kind": appointment.kind.value,
        "starts_at": aware(appointment.starts_at).isoformat(),
        "minutes": appointment.duration_minutes,
        "holder": appointment.staff_username,
        "sequence": appointment.sequence,
    }


async def book(
    session: AsyncSession,
    case: Case,
    booking: Booking,
    actor: StaffActor,
    settings: Settings,
    now: datetime,
    client: Client | None = None,
) -> Appointment:
    appointment = Appointment(
        id=uuid.uuid4(),
        case_id=case.id,
        participant_id=booking.participant_id,
        kind=booking.kind,
        state=AppointmentState.SCHEDULED,
        starts_at=booking.starts_at,
        duration_minutes=booking.duration_minutes,
        place=booking.place,
        phone_e164=booking.phone_e164,
        subject=booking.subject,
        staff_username=booking.holder,
        staff_name=booking.holder_name,
        booked_by=actor.username,
        sequence=0,
        remind_at=_reminder(booking.starts_at, now, settings),
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    await tell_participant(session, appointment, c.SMS_APPOINTMENT, settings)
    audit.record(
        session,
        audit.APPOINTMENT_BOOKED,
        case_id=case.id,
        participant_id=appointment.participant_id,
        actor=actor,
        client=client,
        **_audit_details(appointment),
    )
    return appointment


async def open_request(
    session: AsyncSession, appointment_id: uuid.UUID
) -> AppointmentChangeRequest | None:
    result: AppointmentChangeRequest | None = await session.scalar(
        select(AppointmentChangeRequest).where(
            AppointmentChangeRequest.appointment_id == appointment_id,
            AppointmentChangeRequest.resolved_at.is_(None),
        )
    )
    return result


async def _resolve(
    session: AsyncSession, appointment: Appointment, how: str, actor: StaffActor, now: datetime
) -> str | None:
    request = await open_request(session, appointment.id)
    if request is None:
        return None
    request.resolved_at = now
    request.resolution = how
    request.resolved_by = actor.username
    return str(request.id)


async def reschedule(
    session: AsyncSession,
    appointment: Appointment,
    booking: Booking,
    actor: StaffActor,
    settings: Settings,
    now: datetime,
    client: Client | None = None,
) -> Appointment:
    """A new time (and place, length, holder): the participant is told by SMS, the reminder
    is due anew, and their request to move it, if any, is answered."""
    was = aware(appointment.starts_at)
    appointment.starts_at = booking.starts_at
    appointment.duration_minutes = booking.duration_minutes
    appointment.place = booking.place
    appointment.phone_e164 = booking.phone_e164
    appointment.subject = booking.subject
    appointment.staff_username = booking.holder
    appointment.staff_name = booking.holder_name
    appointment.sequence += 1
    appointment.remind_at = _reminder(booking.starts_at, now, settings)
    appointment.reminded_at = None
    appointment.updated_at = now
    answered = await _resolve(session, appointment, "rescheduled", actor, now)
    await session.flush()
    await tell_participant(session, appointment, c.SMS_APPOINTMENT_MOVED, settings)
    audit.record(
        session,
        audit.APPOINTMENT_RESCHEDULED,
        case_id=appointment.case_id,
        participant_id=appointment.participant_id,
        actor=actor,
        client=client,
        was=was.isoformat(),
        request=answered,
        **_audit_details(appointment),
    )
    return appointment


async def cancel(
    session: AsyncSession,
    appointment: Appointment,
    actor: StaffActor,
    settings: Settings,
    now: datetime,
    client: Client | None = None,
) -> Appointment:
    appointment.state = AppointmentState.CANCELLED
    appointment.cancelled_at = now
    appointment.sequence += 1
    appointment.remind_at = None
    appointment.updated_at = now
    answered = await _resolve(session, appointment, "cancelled", actor, now)
    await session.flush()
    await tell_participant(session, appointment, c.SMS_APPOINTMENT_CANCELLED, settings)
    audit.record(
        session,
        audit.APPOINTMENT_CANCELLED,
        case_id=appointment.case_id,
        participant_id=appointment.participant_id,
        actor=actor,
        client=client,
        request=answered,
        **_audit_details(appointment),
    )
    return appointment


def changeable(appointment: Appointment, now: datetime) -> bool:
    """Scheduled and still to come: what may be moved, cancelled or asked to be moved."""
    return appointment.state == AppointmentState.SCHEDULED and aware(appointment.starts_at) > now


@dataclass(frozen=True, slots=True)
class MoveForm:
    message: str = ""
    preferred: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> MoveForm:
        def text(name: str, limit: int) -> str:
            value = fields.get(name)
            return str(value).strip()[: limit + 50] if isinstance(value, str) else ""

        return cls(text("message", MAX_MESSAGE), text("preferred", MAX_PREFERRED))

    def errors(self) -> dict[str, str]:
        errors = {}
        if not self.message:
            errors["message"] = gettext(NO_MESSAGE)
        elif len(self.message) > MAX_MESSAGE:
            errors["message"] = gettext(MESSAGE_TOO_LONG, max=MAX_MESSAGE)
        if len(self.preferred) > MAX_PREFERRED:
            errors["preferred"] = gettext(PREFERRED_TOO_LONG, max=MAX_PREFERRED)
        return errors


async def request_move(
    session: AsyncSession,
    appointment: Appointment,
    form: MoveForm,
    actor: ParticipantActor,
    now: datetime,
    client: Client | None = None,
) -> AppointmentChangeRequest | None:
    """Record the participant's request and commit it; None if one is open already (two
    sent at once: the database keeps one)."""
    request = AppointmentChangeRequest(
        id=uuid.uuid4(),
        appointment_id=appointment.id,
        participant_id=actor.participant_id,
        message=form.message,
        preferred=form.preferred,
        created_at=now,
    )
    session.add(request)
    audit.record(
        session,
        audit.APPOINTMENT_MOVE_REQUESTED,
        actor=actor,
        client=client,
        appointment=str(appointment.id),
        request=str(request.id),
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return request
