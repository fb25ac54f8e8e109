"""Appointments and the staff calendar against the real Keycloak, engine, PostgreSQL, Redis
and workers: staff book from the case page, the participant reads it in the panel, gets the
SMS (delivered by the workers) and the calendar file, asks to move it; staff move and cancel
it; the reminder goes once the day before (a fake clock); the calendar shows everyone's
times in Europe/Warsaw across the clock changes; the purge takes it all."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from icalendar import Calendar
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from panel_core import constants as c
from panel_core.appointments import service
from panel_core.appointments.messages import sms_context
from panel_core.appointments.reminders import ReminderJob
from panel_core.appointments.times import DASH, day_of, day_start, parse_local, remind_at
from panel_core.audit import log as audit
from panel_core.cases import closure
from panel_core.cases.case_types import AfterClosure
from panel_core.cases.retention import RetentionJob
from panel_core.clock import FakeClock
from panel_core.db.models import (
    Appointment,
    AppointmentChangeRequest,
    AppointmentKind,
    AppointmentState,
    AuditEvent,
    Case,
    PanelTask,
    SmsMessage,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.notifications.sms_templates import render_sms
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from staff.app import create_app as staff_app
from tests import credit
from tests.appointment_helpers import ADDRESS, ADVISER, book_directly, days_ahead
from tests.helpers import eventually, form_token, open_case_via_channel, person
from tests.helpers import sign_in as participant_sign_in
from tests.sms_inbox import message_naming, messages_naming
from tests.staff_helpers import CaseInReview, StaffBrowser, case_in_review

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Browsers of members of staff, each with its dashboard and cookies, in English."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_browser(username: str, clock: FakeClock | None = None) -> StaffBrowser:
        client = AsyncTestClient(staff_app(staff_settings, clock=clock))
        await client.__aenter__()
        client.cookies.set(LANGUAGE_COOKIE, "en")
        member = StaffBrowser(client, staff_settings)
        opened.append((member, client))
        await member.sign_in(username)
        return member

    yield open_browser
    for member, client in opened:
        member.close()
        await client.__aexit__(None, None, None)


@pytest_asyncio.fixture(loop_scope="session")
async def panels(settings: Settings) -> AsyncIterator[Opener]:
    """Participants' browsers of the panel, signed in to their case."""
    opened: list[AsyncTestClient[Litestar]] = []

    async def open_panel(participant_id: str, locale: str = "en") -> AsyncTestClient[Litestar]:
        client = AsyncTestClient(panel_app(settings))
        await client.__aenter__()
        client.cookies.set(LANGUAGE_COOKIE, locale)
        opened.append(client)
        await participant_sign_in(client, participant_id)
        return client

    yield open_panel
    for client in opened:
        await client.__aexit__(None, None, None)


async def two_person_case(settings: Settings) -> dict[str, Any]:
    """A credit case of an English-speaking borrower and a Polish-speaking co-borrower."""
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0, "en")
    partner = person(credit.ROLE_CO_BORROWER, 1, "pl")
    opened = await open_case_via_channel(settings, [borrower, partner])
    ids = {p["role"]: p["participantId"] for p in opened["participants"]}
    return {
        "id": uuid.UUID(opened["caseId"]),
        "number": opened["caseNumber"],
        "borrower": {**borrower, "id": ids[credit.ROLE_PRIMARY_BORROWER]},
        "partner": {**partner, "id": ids[credit.ROLE_CO_BORROWER]},
    }


async def book(member: StaffBrowser, case_id: uuid.UUID, **typed: str) -> Any:
    fields = {
        "kind": "branch",
        "date": days_ahead(3),
        "time": "10:00",
        "duration": "30",
        "place": ADDRESS,
        "subject": "Signing the credit agreement",
        **typed,
    }
    # Any signed-in page carries the token (the sign-out form); the calendar is one.
    return await member.post_form(f"/cases/{case_id}/appointments/", fields, page="/calendar/")


async def appointments_of(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> list[Appointment]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Appointment)
                .where(Appointment.case_id == case_id)
                .order_by(Appointment.created_at)
            )
        )


async def events(
    sessions: async_sessionmaker[AsyncSession], event: str, case_id: uuid.UUID
) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event == event, AuditEvent.case_id == case_id)
                .order_by(AuditEvent.id)
            )
        )


def calendar_event(body: bytes) -> Any:
    events_found = Calendar.from_ical(body).events
    assert len(events_found) == 1
    return events_found[0]


async def expected_sms(
    sessions: async_sessionmaker[AsyncSession],
    appointment_id: uuid.UUID,
    purpose: str,
    locale: str,
    base_url: str,
) -> str:
    """The text the participant must get, rendered here in their language."""
    from panel_core.i18n import use_locale

    async with sessions() as session:
        appointment = await session.get(Appointment, appointment_id)
        assert appointment is not None
        case = await session.get(Case, appointment.case_id)
        assert case is not None
        with use_locale(locale):
            context = sms_context(appointment, case, base_url)
    return render_sms(purpose, locale, context)


# -- booking, the panel, the SMS and the calendar file ----------------------------------------


async def test_an_adviser_books_and_each_participant_sees_only_their_own_with_sms_and_ics(
    people: Opener, panels: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    bartosz = await people("bartosz.doradca")
    form = await bartosz.page(f"/cases/{case['id']}/appointments/new")
    assert form.status_code == 200
    assert 'name="participant"' in form.text and 'name="holder"' not in form.text

    day = days_ahead(3)
    booked = await book(bartosz, case["id"], participant=case["borrower"]["id"], date=day)
    assert booked.status_code == 303, booked.text
    assert booked.headers["location"] == f"/cases/{case['id']}?appointment=booked#appointments"
    called = await book(
        bartosz,
        case["id"],
        participant=case["partner"]["id"],
        kind="phone",
        date=day,
        time="12:15",
        duration="15",
        place="",
        phone="",
        subject="Questions about income",
    )
    assert called.status_code == 303, called.text
    visit, call = await appointments_of(sessions, case["id"])
    starts = parse_local(day, "10:00")
    assert visit.starts_at == starts and visit.duration_minutes == 30
    assert (visit.staff_username, visit.booked_by) == ("bartosz.doradca", "bartosz.doradca")
    assert visit.remind_at == remind_at(starts, settings.appointment_reminder_hour)
    assert call.kind is AppointmentKind.PHONE and call.phone_e164 is None

    # Each participant's phone gets its own message, in their own language.
    english = await message_naming(settings.redis_url, case["borrower"]["phone"], "Appointment")
    assert english == await expected_sms(
        sessions, visit.id, c.SMS_APPOINTMENT, "en", settings.public_base_url
    )
    when = starts.astimezone(visit.starts_at.tzinfo).strftime("%d.%m.%Y")
    assert f"{when} 10:00 (30 min), {ADDRESS}" in english
    polish = await expected_sms(
        sessions, call.id, c.SMS_APPOINTMENT, "pl", settings.public_base_url
    )
    assert await message_naming(settings.redis_url, case["partner"]["phone"], "12:15") == polish

    # The case page lists both, with whom and who holds them.
    page = await bartosz.page(f"/cases/{case['id']}?appointment=booked")
    assert "The appointment is booked." in page.text
    assert "Signing the credit agreement" in page.text and "Questions about income" in page.text
    assert "Bartosz Wójcik" in page.text
    booked_events = await events(sessions, audit.APPOINTMENT_BOOKED, case["id"])
    assert [e.staff_name for e in booked_events] == ["Bartosz Wójcik"] * 2
    assert booked_events[0].details["appointment"] == str(visit.id)

    borrower = await panels(case["borrower"]["id"])
    overview = await borrower.get("/case/")
    assert "Your appointments" in overview.text
    assert "Signing the credit agreement" in overview.text and ADDRESS in overview.text
    assert "Questions about income" not in overview.text
    download = await borrower.get(f"/appointments/{visit.id}/calendar.ics")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/calendar")
    assert "attachment" in download.headers["content-disposition"]
    event = calendar_event(download.content)
    assert event.decoded("dtstart") == starts
    assert event.decoded("dtend") == starts + timedelta(minutes=30)
    assert str(event.get("location")) == ADDRESS
    assert "Signing the credit agreement" in str(event.get("summary"))
    assert str(event.get("uid")).startswith(f"appointment-{visit.id}@")
    assert await events(sessions, audit.APPOINTMENT_CALENDAR_DOWNLOADED, case["id"])

    # The co-borrower of the same case: the borrower's appointment is none of theirs.
    partner = await panels(case["partner"]["id"], "pl")
    assert (await partner.get(f"/appointments/{visit.id}/calendar.ics")).status_code == 404
    assert (await partner.get(f"/appointments/{visit.id}/move")).status_code == 404
    own = await partner.get(f"/appointments/{call.id}/calendar.ics")
    assert own.status_code == 200
    assert calendar_event(own.content).decoded("dtstart") == parse_local(day, "12:15")

    # Nobody signed in; then a participant of another case, with the ids in hand.
    async with AsyncTestClient(panel_app(settings)) as anonymous:
        assert (await anonymous.get(f"/appointments/{visit.id}/calendar.ics")).status_code == 401
    # A participant of another case, with the ids in hand.
    other = await open_case_via_channel(settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    stranger = await panels(other["participants"][0]["participantId"])
    assert (await stranger.get(f"/appointments/{visit.id}/calendar.ics")).status_code == 404
    assert (await stranger.get(f"/appointments/{call.id}/move")).status_code == 404
    assert "Signing the credit agreement" not in (await stranger.get("/case/")).text


async def test_who_may_not_book_gets_403_and_nothing_is_booked(
    people: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    for username in ("anna.analityk", "olek.operator"):
        member = await people(username)
        page = await member.page(f"/cases/{case['id']}")
        assert page.status_code == 200
        assert f"/cases/{case['id']}/appointments/new" not in page.text
        assert (await member.page(f"/cases/{case['id']}/appointments/new")).status_code == 403
        refused = await book(member, case["id"], participant=case["borrower"]["id"])
        assert refused.status_code == 403
        assert "Only branch advisers, call-centre agents and team managers" in refused.text
    assert await appointments_of(sessions, case["id"]) == []
    # A call-centre agent may.
    celina = await people("celina.konsultant")
    assert (await book(celina, case["id"], participant=case["borrower"]["id"])).status_code == 303
    # Of a case nobody can see (there is none such): 404 before any role is looked at.
    missing = await celina.page(f"/cases/{uuid.uuid4()}/appointments/new")
    assert missing.status_code == 404


async def test_times_the_clock_change_skips_or_repeats_are_refused_and_the_form_kept(
    people: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    bartosz = await people("bartosz.doradca")
    skipped = await book(
        bartosz,
        case["id"],
        participant=case["borrower"]["id"],
        date="2027-03-28",
        time="02:30",
        subject="Kept as typed",
    )
    assert skipped.status_code == 400
    assert "On 28.03.2027 the clocks go forward from 02:00 to 03:00" in skipped.text
    assert 'href="#field-time"' in skipped.text
    assert 'value="Kept as typed"' in skipped.text and 'value="2027-03-28"' in skipped.text
    repeated = await book(
        bartosz, case["id"], participant=case["borrower"]["id"], date="2027-10-31", time="02:30"
    )
    assert repeated.status_code == 400
    assert "02:30 happens twice that day" in repeated.text
    past = await book(bartosz, case["id"], participant=case["borrower"]["id"], date="2026-01-05")
    assert past.status_code == 400 and "Choose a time in the future." in past.text
    assert await appointments_of(sessions, case["id"]) == []

    after_change = await book(
        bartosz, case["id"], participant=case["borrower"]["id"], date="2027-03-28", time="03:00"
    )
    assert after_change.status_code == 303
    last_winter = await book(
        bartosz, case["id"], participant=case["borrower"]["id"], date="2027-10-31", time="01:59"
    )
    assert last_winter.status_code == 303
    spring, autumn = await appointments_of(sessions, case["id"])
    assert spring.starts_at == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    assert autumn.starts_at == datetime(2027, 10, 30, 23, 59, tzinfo=UTC)


# -- moving and cancelling ---------------------------------------------------------------------


async def test_a_move_request_reaches_staff_who_move_then_cancel_each_told_by_sms(
    people: Opener, panels: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    celina = await people("celina.konsultant")
    phone = case["borrower"]["phone"]
    booked = await book(
        celina,
        case["id"],
        participant=case["borrower"]["id"],
        kind="phone",
        phone="+48 22 123 45 67",
        date=days_ahead(4),
        time="09:00",
    )
    assert booked.status_code == 303, booked.text
    (appointment,) = await appointments_of(sessions, case["id"])
    await message_naming(settings.redis_url, phone, "the bank calls +48221234567")

    borrower = await panels(case["borrower"]["id"])
    overview = await borrower.get("/case/")
    assert f"/appointments/{appointment.id}/move" in overview.text
    page = await borrower.get(f"/appointments/{appointment.id}/move")
    assert page.status_code == 200 and 'name="message"' in page.text
    empty = await borrower.post(
        f"/appointments/{appointment.id}/move",
        data={"message": " ", "_csrf_token": form_token(page.text)},
    )
    assert empty.status_code == 400
    assert "Tell the bank why the time does not suit you." in empty.text
    asked = await borrower.post(
        f"/appointments/{appointment.id}/move",
        data={
            "message": "I work a morning shift that week.",
            "preferred": "Any afternoon after 16:00",
            "_csrf_token": form_token(page.text),
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303
    sent = await borrower.get(asked.headers["location"])
    assert "The bank has your request" in sent.text
    again = await borrower.post(
        f"/appointments/{appointment.id}/move",
        data={"message": "Again", "_csrf_token": form_token(page.text)},
    )
    assert again.status_code == 409
    assert "You asked to move it on" in (await borrower.get("/case/")).text
    (requested,) = await events(sessions, audit.APPOINTMENT_MOVE_REQUESTED, case["id"])
    assert requested.actor_kind == "participant"
    assert requested.participant_id == uuid.UUID(case["borrower"]["id"])

    # Staff see the request on the case page and beside the form that moves it.
    case_page = await celina.page(f"/cases/{case['id']}")
    assert "I work a morning shift that week." in case_page.text
    assert "Any afternoon after 16:00" in case_page.text
    assert "Requests to move: 1" in case_page.text
    move_path = f"/cases/{case['id']}/appointments/{appointment.id}/reschedule"
    move_page = await celina.page(move_path)
    assert "The participant asked to move it" in move_page.text
    new_day = days_ahead(6)
    moved = await celina.post_form(
        move_path,
        {
            "date": new_day,
            "time": "16:30",
            "duration": "30",
            "phone": "+48 22 123 45 67",
            "subject": "Signing the credit agreement",
        },
        page=move_path,
    )
    assert moved.status_code == 303, moved.text
    text = await message_naming(settings.redis_url, phone, "has a new time")
    assert f"{date.fromisoformat(new_day).strftime('%d.%m.%Y')} 16:30" in text
    async with sessions() as session:
        row = await session.get(Appointment, appointment.id)
        request = await session.scalar(
            select(AppointmentChangeRequest).where(
                AppointmentChangeRequest.appointment_id == appointment.id
            )
        )
        assert row is not None and request is not None
        assert row.sequence == 1 and row.starts_at == parse_local(new_day, "16:30")
        assert (request.resolution, request.resolved_by) == ("rescheduled", "celina.konsultant")
    overview = await borrower.get("/case/")
    assert "You asked to move it on" not in overview.text
    assert f"/appointments/{appointment.id}/move" in overview.text
    event = calendar_event(
        (await borrower.get(f"/appointments/{appointment.id}/calendar.ics")).content
    )
    assert int(event.get("sequence")) == 1
    assert str(event.get("uid")).startswith(f"appointment-{appointment.id}@")
    assert event.decoded("dtstart") == parse_local(new_day, "16:30")
    (rescheduled,) = await events(sessions, audit.APPOINTMENT_RESCHEDULED, case["id"])
    assert rescheduled.staff_name == "Celina Wiśniewska"
    assert rescheduled.details["request"] == str(request.id)

    cancel_path = f"/cases/{case['id']}/appointments/{appointment.id}/cancel"
    assert (await celina.page(cancel_path)).status_code == 200
    cancelled = await celina.post_form(cancel_path, {}, page=cancel_path)
    assert cancelled.status_code == 303
    await message_naming(settings.redis_url, phone, "cancelled your appointment")
    event = calendar_event(
        (await borrower.get(f"/appointments/{appointment.id}/calendar.ics")).content
    )
    assert str(event.get("status")) == "CANCELLED" and int(event.get("sequence")) == 2
    overview = await borrower.get("/case/")
    assert "Cancelled by the bank" in overview.text
    assert f"/appointments/{appointment.id}/move" not in overview.text
    # Nothing more to change: the forms say so, and nothing is sent.
    assert (await celina.post_form(cancel_path, {}, page=cancel_path)).status_code == 409
    late = await celina.post_form(
        move_path,
        {"date": new_day, "time": "17:00", "duration": "30", "subject": "x"},
        page=move_path,
    )
    assert late.status_code == 409 and "can no longer be changed" in late.text
    assert len(await messages_naming(settings.redis_url, phone, "cancelled your appointment")) == 1


# -- the reminder the day before ---------------------------------------------------------------


async def reminders_queued(
    sessions: async_sessionmaker[AsyncSession], appointment_id: uuid.UUID
) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(SmsMessage)
            .where(
                SmsMessage.purpose == c.SMS_APPOINTMENT_REMINDER,
                SmsMessage.idempotency_key.like(f"%:{appointment_id}:%"),
            )
        )
    return int(count or 0)


async def test_the_reminder_goes_once_the_day_before_with_two_jobs_at_once(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    appointment = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], days_ahead(3)
    )
    assert appointment.remind_at is not None
    due = appointment.remind_at.timestamp()
    clock = FakeClock(due - 60)
    first, second = ReminderJob(sessions, settings, clock), ReminderJob(sessions, settings, clock)
    assert appointment.id not in (await first.run_once()).sent
    assert await reminders_queued(sessions, appointment.id) == 0

    clock.advance(60)
    reports = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(r.sent.count(appointment.id) for r in reports) == 1
    assert await reminders_queued(sessions, appointment.id) == 1
    # A restarted worker, a day later still: nothing more.
    clock.advance(3600)
    assert appointment.id not in (await ReminderJob(sessions, settings, clock).run_once()).sent
    assert await reminders_queued(sessions, appointment.id) == 1

    text = await message_naming(settings.redis_url, case["borrower"]["phone"], "Reminder:")
    assert text == await expected_sms(
        sessions, appointment.id, c.SMS_APPOINTMENT_REMINDER, "en", settings.public_base_url
    )
    assert "tomorrow" in text and "09:00" in text
    await asyncio.sleep(1.5)
    assert (
        len(await messages_naming(settings.redis_url, case["borrower"]["phone"], "Reminder:")) == 1
    )
    (reminded,) = await events(sessions, audit.APPOINTMENT_REMINDED, case["id"])
    assert reminded.actor_kind == "system"

    # Moved by the bank: the new time gets a reminder of its own.
    async with sessions() as session:
        row = await session.get(Appointment, appointment.id)
        case_row = await session.get(Case, case["id"])
        assert row is not None and case_row is not None
        await session.refresh(case_row, ["participants"])
        new_day = days_ahead(5)
        checked = service.check_form(
            service.AppointmentForm(
                date=new_day, time="09:00", duration="60", place=ADDRESS, subject=row.subject
            ),
            case=case_row,
            now=datetime.now(UTC),
            holders={ADVISER.username: ADVISER.name},
            fixed=row,
        )
        assert checked.booking is not None, checked.errors
        await service.reschedule(
            session, row, checked.booking, ADVISER, settings, datetime.now(UTC)
        )
        await session.commit()
        assert row.remind_at is not None and row.reminded_at is None
        new_due = row.remind_at.timestamp()
    later = FakeClock(new_due)
    assert appointment.id in (await ReminderJob(sessions, settings, later).run_once()).sent
    assert await reminders_queued(sessions, appointment.id) == 2


class FlakyReminders(ReminderJob):
    """Fails to queue one appointment's reminder once, as in a database outage."""

    def __init__(self, *args: Any, failing: uuid.UUID) -> None:
        super().__init__(*args)
        self.failing: uuid.UUID | None = failing

    async def tell(self, session: AsyncSession, appointment: Appointment) -> None:
        if appointment.id == self.failing:
            self.failing = None
            raise OSError("connection to the database lost")
        await super().tell(session, appointment)


async def test_a_reminder_that_fails_is_tried_again_and_the_others_go_meanwhile(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    day = days_ahead(3)
    first = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], day, "09:00"
    )
    second = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], day, "11:00"
    )
    assert first.remind_at is not None
    clock = FakeClock(first.remind_at.timestamp())
    job = FlakyReminders(sessions, settings, clock, failing=first.id)
    report = await job.run_once()
    assert first.id in report.failed and second.id in report.sent
    async with sessions() as session:
        row = await session.get(Appointment, first.id)
        assert row is not None and row.reminded_at is None
    assert await reminders_queued(sessions, first.id) == 0

    resumed = await job.run_once()
    assert first.id in resumed.sent and second.id not in resumed.sent
    assert await reminders_queued(sessions, first.id) == 1
    assert await reminders_queued(sessions, second.id) == 1


async def test_the_workers_loop_reminds_and_drops_what_is_too_late_for_tomorrow(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    on_time = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], days_ahead(3), "15:00"
    )
    too_late = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], days_ahead(2), "08:00"
    )
    assert on_time.remind_at is not None and too_late.remind_at is not None
    clock = FakeClock(min(on_time.remind_at, too_late.remind_at).timestamp() - 3600)
    stopped = asyncio.Event()
    loop = asyncio.create_task(ReminderJob(sessions, settings, clock).run(stopped, 0.05))
    try:
        await asyncio.sleep(0.2)
        assert await reminders_queued(sessions, on_time.id) == 0
        # The workers were down from before the first reminder until the second is due: by
        # then the first appointment's own day has begun.
        assert day_start(day_of(too_late.starts_at)) < on_time.remind_at
        clock.advance(on_time.remind_at.timestamp() - clock.now())

        async def reminded() -> bool:
            return await reminders_queued(sessions, on_time.id) == 1

        await eventually(reminded, within=10, interval=0.05)
    finally:
        stopped.set()
        await asyncio.wait_for(loop, timeout=5)
    async with sessions() as session:
        dropped = await session.get(Appointment, too_late.id)
        assert dropped is not None and dropped.remind_at is None and dropped.reminded_at is None
    assert await reminders_queued(sessions, too_late.id) == 0


# -- the calendar ------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def in_review(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CaseInReview:
    return await case_in_review(settings, sessions)


def day_section(html: str, day: str) -> str:
    match = re.search(
        rf'<section class="calendar__day[^"]*" aria-labelledby="day-{day}">(.*?)</section>',
        html,
        re.S,
    )
    assert match, f"no section for {day}"
    return match.group(1)


async def test_the_calendar_shows_local_hours_across_both_changes_and_a_managers_team(
    people: Opener,
    in_review: CaseInReview,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    anna = await people("anna.analityk")
    magda = await people("magda.kierownik")
    bartosz = await people("bartosz.doradca")
    case_id = in_review.case_id
    participant = in_review.participant_id
    tag = secrets.token_hex(3)

    # The manager gives the analyst the review with its dates on the spring change's Sunday:
    # due 00:30 (still Saturday in UTC), follow-up 03:30 (just after the change).
    task_path = f"/tasks/{in_review.analyst_task_id}"
    assert (
        await magda.post_form(f"{task_path}/reassign", {"assignee": "anna.analityk"}, task_path)
    ).status_code == 303
    scheduled = await magda.post_form(
        f"{task_path}/schedule",
        {"due_date": "2027-03-28T00:30", "follow_up_date": "2027-03-28T03:30", "priority": "60"},
        task_path,
    )
    assert scheduled.status_code == 303, scheduled.text
    async with sessions() as session:
        task = await session.get(PanelTask, in_review.analyst_task_id)
        assert task is not None
        assert task.due_date == datetime(2027, 3, 27, 23, 30, tzinfo=UTC)

    # The manager books for someone of her team: the analyst holds it.
    form = await magda.page(f"/cases/{case_id}/appointments/new")
    assert 'name="holder"' in form.text and "Anna Kowalska" in form.text
    assert "Bartosz Wójcik" not in form.text
    for day, clock, subject in (
        ("2027-03-28", "10:00", f"Spring visit {tag}"),
        ("2027-10-31", "03:30", f"Autumn visit {tag}"),
        (days_ahead(5), "11:00", f"Soon {tag}"),
    ):
        made = await book(
            magda,
            case_id,
            participant=participant,
            date=day,
            time=clock,
            subject=subject,
            holder="anna.analityk",
        )
        assert made.status_code == 303, made.text
    refused = await book(
        magda, case_id, participant=participant, subject="x", holder="bartosz.doradca"
    )
    assert refused.status_code == 400 and "Choose who at the bank holds" in refused.text
    own = await book(
        bartosz, case_id, participant=participant, date="2027-03-27", subject=f"Adviser {tag}"
    )
    assert own.status_code == 303

    week = await anna.page("/calendar/?view=week&week=2027-03-24")
    assert week.status_code == 200
    assert "Week from Monday, 22.03.2027 to Sunday, 28.03.2027" in week.text
    sunday = day_section(week.text, "2027-03-28")
    assert re.search(r">00:30</time>\s*<span class=\"calendar__kind\">Due", sunday), sunday
    assert re.search(r">03:30</time>\s*<span class=\"calendar__kind\">Follow up", sunday)
    assert f">10:00{DASH}10:30</time>" in sunday and f"Spring visit {tag}" in sunday
    assert sunday.index(">00:30<") < sunday.index(">03:30<") < sunday.index(">10:00")
    saturday = day_section(week.text, "2027-03-27")
    assert "Nothing planned." in saturday and f"Adviser {tag}" not in week.text
    autumn = await anna.page("/calendar/?week=2027-10-31")
    assert f">03:30{DASH}04:00</time>" in day_section(autumn.text, "2027-10-31")

    agenda = await anna.page("/calendar/?view=agenda")
    assert f"Soon {tag}" in agenda.text and f"Spring visit {tag}" not in agenda.text

    # Her own calendar holds none of this; her team's holds the analyst's, not the adviser's.
    mine = await magda.page("/calendar/?week=2027-03-22")
    assert f"Spring visit {tag}" not in mine.text
    team = await magda.page("/calendar/?week=2027-03-22&who=team")
    assert team.status_code == 200
    team_sunday = day_section(team.text, "2027-03-28")
    assert f"Spring visit {tag}" in team_sunday and "Anna Kowalska" in team_sunday
    assert ">00:30</time>" in team_sunday
    assert f"Adviser {tag}" not in team.text

    # The adviser: his own; no team view without the manager's role.
    his = await bartosz.page("/calendar/?week=2027-03-22&who=team")
    assert f"Adviser {tag}" in day_section(his.text, "2027-03-27")
    assert f"Spring visit {tag}" not in his.text
    viewed = await events_by(sessions, audit.CALENDAR_VIEWED, "magda.kierownik")
    assert any(e.details.get("team") for e in viewed)


async def events_by(
    sessions: async_sessionmaker[AsyncSession], event: str, username: str
) -> list[AuditEvent]:
    async with sessions() as session:
        found = await session.scalars(select(AuditEvent).where(AuditEvent.event == event))
        return [e for e in found if e.details.get("username") == username]


# -- after the case ----------------------------------------------------------------------------


async def purged(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    number: str,
) -> Counter[str]:
    """Run the purge until it has purged the case: a run skips a case whose row the workers
    hold at that moment (inviting its participants), and takes it the next time."""
    job = RetentionJob(sessions, LocalDiskStorage(settings.document_storage_dir), clock)

    async def probe() -> Counter[str] | None:
        report = await job.run_once()
        return report.removed if number in report.purged else None

    return await eventually(probe, within=30, interval=0.5)


async def test_appointments_follow_what_a_closed_case_shows_and_go_with_the_purge(
    panels: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    appointment = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], days_ahead(3)
    )
    async with sessions() as session:
        session.add(
            AppointmentChangeRequest(
                appointment_id=appointment.id,
                participant_id=uuid.UUID(case["borrower"]["id"]),
                message="Please later",
            )
        )
        await session.commit()
    borrower = await panels(case["borrower"]["id"])

    async def close(shows: str) -> None:
        async with sessions() as session:
            row = await session.get(Case, case["id"])
            assert row is not None
            closure.close(
                row,
                AfterClosure(access_days=30, shows=shows, purge_after_days=30),  # type: ignore[arg-type]
                datetime.now(UTC),
            )
            await session.commit()

    await close("documents")
    assert appointment.subject in (await borrower.get("/case/")).text
    assert (await borrower.get(f"/appointments/{appointment.id}/calendar.ics")).status_code == 200
    await close("status")
    assert appointment.subject not in (await borrower.get("/case/")).text
    assert (await borrower.get(f"/appointments/{appointment.id}/calendar.ics")).status_code == 404

    clock = FakeClock(datetime.now(UTC).timestamp() + 31 * 86400)
    removed = await purged(settings, sessions, clock, case["number"])
    assert removed["appointments"] >= 2
    assert await appointments_of(sessions, case["id"]) == []
    async with sessions() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(AppointmentChangeRequest)
            .where(AppointmentChangeRequest.appointment_id == appointment.id)
        )
    assert left == 0


async def test_a_purge_that_keeps_appointments_still_clears_the_number_called(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await two_person_case(settings)
    appointment = await book_directly(
        settings, sessions, case["id"], case["borrower"]["id"], days_ahead(3)
    )
    async with sessions() as session:
        row = await session.get(Appointment, appointment.id)
        assert row is not None
        row.kind, row.phone_e164, row.place = AppointmentKind.PHONE, "+48221234567", None
        case_row = await session.get(Case, case["id"])
        assert case_row is not None
        closure.close(
            case_row,
            AfterClosure(access_days=0, purge_after_days=0, purge=("phones", "identity")),
            datetime.now(UTC),
        )
        await session.commit()
    clock = FakeClock(datetime.now(UTC).timestamp() + 60)
    await purged(settings, sessions, clock, case["number"])
    (kept,) = await appointments_of(sessions, case["id"])
    assert kept.state is AppointmentState.SCHEDULED and kept.phone_e164 is None
