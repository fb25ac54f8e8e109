"""Appointment times without any service: Europe/Warsaw in, UTC kept, the clock changes at
both ends of summer time, the reminder's hour, the calendar file and the SMS texts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from icalendar import Calendar

from panel_core import constants as c
from panel_core.appointments import ics
from panel_core.appointments.calendar import CalendarEntry, EntryKind, by_day
from panel_core.appointments.messages import sms_context
from panel_core.appointments.service import (
    AppointmentForm,
    check_form,
    when_range,
)
from panel_core.appointments.times import (
    DASH,
    TimeProblem,
    day_of,
    day_start,
    days_between,
    parse_local,
    remind_at,
    week_of,
)
from panel_core.cases.case_types import PURGEABLE
from panel_core.db.models import (
    Appointment,
    AppointmentKind,
    AppointmentState,
    Case,
    Participant,
)
from panel_core.i18n import use_locale
from panel_core.notifications.sms_templates import PANEL_TEXTS, render_sms, text_problems


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- typing a time in Europe/Warsaw ---------------------------------------------------------


def test_a_time_that_the_spring_clock_change_skips_is_refused_with_a_clear_message() -> None:
    with pytest.raises(TimeProblem) as refused, use_locale("en"):
        parse_local("2026-03-29", "02:30")
    with use_locale("en"):
        message = refused.value.translated()
    assert message == (
        "On 29.03.2026 the clocks go forward from 02:00 to 03:00, so 02:30 does not exist "
        "that day. Choose another time."
    )
    # Either side of the gap is one moment each: the hour before is winter time, after summer.
    assert parse_local("2026-03-29", "01:59") == utc(2026, 3, 29, 0, 59)
    assert parse_local("2026-03-29", "03:00") == utc(2026, 3, 29, 1, 0)
    with pytest.raises(TimeProblem):
        parse_local("2026-03-29", "02:00")


def test_a_time_the_autumn_clock_change_repeats_is_refused_as_ambiguous() -> None:
    with pytest.raises(TimeProblem) as refused:
        parse_local("2026-10-25", "02:30")
    with use_locale("en"):
        assert "02:30 happens twice that day" in refused.value.translated()
    assert parse_local("2026-10-25", "01:59") == utc(2026, 10, 24, 23, 59)
    assert parse_local("2026-10-25", "03:00") == utc(2026, 10, 25, 2, 0)
    # The day after, an ordinary winter day: one hour behind UTC.
    assert parse_local("2026-10-26", "02:30") == utc(2026, 10, 26, 1, 30)
    assert parse_local("2026-07-01", "12:00") == utc(2026, 7, 1, 10, 0)


@pytest.mark.parametrize(
    ("day", "clock", "message"),
    [
        ("29/03/2027", "10:00", "Enter the date as day, month and year"),
        ("2027-02-30", "10:00", "Enter the date as day, month and year"),
        ("2027-03-29", "25:00", "Enter the time as hours and minutes"),
        ("2027-03-29", "9", "Enter the time as hours and minutes"),
    ],
)
def test_what_is_no_date_or_time_is_refused(day: str, clock: str, message: str) -> None:
    with pytest.raises(TimeProblem) as refused:
        parse_local(day, clock)
    with use_locale("en"):
        assert refused.value.translated().startswith(message)


def test_the_reminder_is_due_at_ten_the_day_before_in_local_time_across_the_change() -> None:
    # Monday after the spring change: the Sunday before is summer time already.
    assert remind_at(parse_local("2027-03-29", "09:00"), 10) == utc(2027, 3, 28, 8, 0)
    # The Sunday of the change itself: its Saturday is still winter time.
    assert remind_at(parse_local("2027-03-28", "12:00"), 10) == utc(2027, 3, 27, 9, 0)
    # An early appointment on the first winter day: reminded at 10:00 summer time the day before.
    assert remind_at(parse_local("2027-11-01", "00:30"), 10) == utc(2027, 10, 31, 9, 0)
    # Just after local midnight, which in UTC is still the day before the day before.
    assert remind_at(parse_local("2027-06-02", "00:30"), 10) == utc(2027, 6, 1, 8, 0)


def test_days_and_weeks_begin_at_local_midnight() -> None:
    assert week_of(date(2027, 3, 28)) == date(2027, 3, 22)
    assert day_start(date(2027, 3, 28)) == utc(2027, 3, 27, 23, 0)
    assert day_start(date(2027, 3, 29)) == utc(2027, 3, 28, 22, 0)
    # The week of the spring change is an hour short; of the autumn change an hour long.
    spring = day_start(date(2027, 3, 29)) - day_start(date(2027, 3, 22))
    autumn = day_start(date(2027, 11, 1)) - day_start(date(2027, 10, 25))
    assert spring == timedelta(days=7, hours=-1)
    assert autumn == timedelta(days=7, hours=1)
    assert day_of(utc(2027, 3, 27, 23, 30)) == date(2027, 3, 28)


# -- the booking form --------------------------------------------------------------------------


def a_case() -> Case:
    case = Case(id=uuid.uuid4(), case_number="KR-2026-00001234", case_type="credit")
    case.participants = [
        Participant(id=uuid.uuid4(), role="borrower", ordinal=0, phone_e164="+48500100200")
    ]
    return case


NOW = utc(2026, 12, 2, 12, 0)
HOLDERS = {"bartosz.doradca": "Bartosz Wójcik"}


def form(**typed: str) -> AppointmentForm:
    values = {
        "kind": "branch",
        "date": "2027-03-28",
        "time": "10:00",
        "duration": "30",
        "place": "ul. Marszałkowska 1, Warszawa",
        "subject": "Podpisanie umowy",
        "holder": "bartosz.doradca",
        **typed,
    }
    return AppointmentForm(**values)


def test_a_booking_is_kept_in_utc_and_refusals_name_their_field() -> None:
    case = a_case()
    participant = str(case.participants[0].id)
    checked = check_form(form(participant=participant), case=case, now=NOW, holders=HOLDERS)
    assert checked.errors == {}
    assert checked.booking is not None
    # The Sunday of the spring change, 10:00 summer time.
    assert checked.booking.starts_at == utc(2027, 3, 28, 8, 0)
    assert checked.booking.holder_name == "Bartosz Wójcik"

    with use_locale("en"):
        refused = check_form(
            form(
                participant=str(uuid.uuid4()),
                kind="visit",
                time="02:30",
                duration="33",
                subject=" ",
                holder="anna.analityk",
            ),
            case=case,
            now=NOW,
            holders=HOLDERS,
        )
    assert refused.booking is None
    assert set(refused.errors) == {"participant", "kind", "time", "duration", "subject", "holder"}
    assert "does not exist" in refused.errors["time"]

    with use_locale("en"):
        past = check_form(
            form(participant=participant, date="2026-12-01"), case=case, now=NOW, holders=HOLDERS
        )
        no_place = check_form(
            form(participant=participant, place=""), case=case, now=NOW, holders=HOLDERS
        )
        bad_phone = check_form(
            form(participant=participant, kind="phone", phone="12"),
            case=case,
            now=NOW,
            holders=HOLDERS,
        )
        far = check_form(
            form(participant=participant, date="2028-01-10"), case=case, now=NOW, holders=HOLDERS
        )
    assert past.errors == {"date": "Choose a time in the future."}
    assert no_place.errors == {"place": "Enter the branch's address."}
    assert set(bad_phone.errors) == {"phone"}
    assert far.errors == {"date": "Appointments can be booked up to a year ahead."}

    call = check_form(
        form(participant=participant, kind="phone", phone="600 700 800", place="ignored"),
        case=case,
        now=NOW,
        holders=HOLDERS,
    )
    assert call.booking is not None
    assert (call.booking.phone_e164, call.booking.place) == ("+48600700800", None)


# -- the calendar file and the texts -----------------------------------------------------------


def an_appointment(case: Case, **changes: object) -> Appointment:
    values: dict[str, object] = {
        "id": uuid.UUID("6a1c3a52-0f6e-4a59-9a77-6c1d3f2b9e10"),
        "case_id": case.id,
        "participant_id": case.participants[0].id,
        "kind": AppointmentKind.BRANCH,
        "state": AppointmentState.SCHEDULED,
        "starts_at": utc(2027, 10, 31, 2, 30),
        "duration_minutes": 60,
        "place": "ul. Piotrkowska 10, Łódź",
        "phone_e164": None,
        "subject": "Podpisanie umowy",
        "staff_username": "bartosz.doradca",
        "staff_name": "Bartosz Wójcik",
        "booked_by": "bartosz.doradca",
        "sequence": 0,
        "created_at": NOW,
        "updated_at": NOW,
        **changes,
    }
    return Appointment(**values)


def test_the_calendar_file_has_utc_times_a_stable_uid_and_counts_changes() -> None:
    case = a_case()
    # 02:30 UTC on the autumn change's Sunday: 03:30 winter time, an hour after the change.
    first = an_appointment(case)
    with use_locale("en"):
        parsed = Calendar.from_ical(ics.calendar_file(first, case, "https://panel.bank.example"))
    assert when_range(first) == f"31.10.2027 03:30{DASH}04:30"
    event = parsed.events[0]
    assert event.decoded("dtstart") == utc(2027, 10, 31, 2, 30)
    assert event.decoded("dtend") == utc(2027, 10, 31, 3, 30)
    assert event.get("dtstart").to_ical().decode() == "20271031T023000Z"
    assert str(event.get("uid")) == (
        "appointment-6a1c3a52-0f6e-4a59-9a77-6c1d3f2b9e10@panel.bank.example"
    )
    assert str(event.get("summary")) == ("Branch visit: Podpisanie umowy (case KR-2026-00001234)")
    assert str(event.get("location")) == "ul. Piotrkowska 10, Łódź"
    assert int(event.get("sequence")) == 0 and str(event.get("status")) == "CONFIRMED"

    moved = an_appointment(
        case, starts_at=utc(2027, 11, 2, 9, 0), sequence=1, state=AppointmentState.CANCELLED
    )
    again = Calendar.from_ical(ics.calendar_file(moved, case, "https://panel.bank.example"))
    assert str(again.events[0].get("uid")) == str(event.get("uid"))
    assert int(again.events[0].get("sequence")) == 1
    assert str(again.events[0].get("status")) == "CANCELLED"
    assert ics.file_name(case, moved) == "appointment-KR-2026-00001234-20271102.ics"


def test_every_appointment_text_renders_and_a_bank_may_word_it() -> None:
    case = a_case()
    appointment = an_appointment(case, starts_at=utc(2027, 3, 29, 8, 0), duration_minutes=30)
    with use_locale("en"):
        context = sms_context(appointment, case, "https://panel.bank.example")
    assert context["when"] == "29.03.2027 10:00"
    texts = {
        purpose: render_sms(purpose, "en", context)
        for purpose in (
            c.SMS_APPOINTMENT,
            c.SMS_APPOINTMENT_MOVED,
            c.SMS_APPOINTMENT_REMINDER,
            c.SMS_APPOINTMENT_CANCELLED,
        )
    }
    assert texts[c.SMS_APPOINTMENT] == (
        "Appointment with the bank, case KR-2026-00001234: a branch visit on 29.03.2027 10:00 "
        "(30 min), ul. Piotrkowska 10, Łódź. Details and a calendar file: "
        "https://panel.bank.example/login?case=KR-2026-00001234"
    )
    assert texts[c.SMS_APPOINTMENT_REMINDER].startswith("Reminder: tomorrow")
    assert "has a new time" in texts[c.SMS_APPOINTMENT_MOVED]
    assert "cancelled your appointment" in texts[c.SMS_APPOINTMENT_CANCELLED]
    call = an_appointment(case, kind=AppointmentKind.PHONE, place=None, phone_e164="+48221234567")
    with use_locale("en"):
        assert sms_context(call, case, "https://p")["where"] == "the bank calls +48221234567"
        call.phone_e164 = None
        assert sms_context(call, case, "https://p")["where"] == "the bank calls you"
    # A bank's own wording: checked like the other purposes, {when} required.
    assert text_problems("sms.appointment", "appointment", {"pl": "Wizyta {when} {where}"}) == []
    assert text_problems("sms.appointment", "appointment", {"pl": "Wizyta {where}"}) == [
        "sms.appointment.pl: lacks {when}"
    ]
    for purpose in ("appointment", "appointment-moved", "appointment-reminder"):
        assert PANEL_TEXTS[purpose][1] == {"when"}
    assert "appointments" in PURGEABLE


def test_a_week_spanning_the_clock_change_puts_each_moment_on_its_local_day_and_hour() -> None:
    monday = date(2027, 3, 22)
    days = days_between(monday, monday + timedelta(days=7))

    def entry(at: datetime, minutes: int | None = None) -> CalendarEntry:
        return CalendarEntry(
            at=at,
            ends=at + timedelta(minutes=minutes) if minutes else None,
            kind=EntryKind.APPOINTMENT if minutes else EntryKind.DUE,
            title="x",
            detail="",
            case_id=None,
            case_number=None,
            holder="anna.analityk",
            holder_name="Anna",
            link="/",
        )

    entries = [
        entry(utc(2027, 3, 27, 9, 0), 30),  # Saturday 10:00, winter time
        entry(utc(2027, 3, 27, 23, 30)),  # Sunday 00:30: still Saturday in UTC
        entry(utc(2027, 3, 28, 1, 30)),  # Sunday 03:30, just after the change
        entry(utc(2027, 3, 28, 8, 0), 30),  # Sunday 10:00, summer time
    ]
    with use_locale("pl"):
        week = by_day(entries, days, date(2027, 3, 24), keep_empty=True)
    assert len(week) == 7 and week[2].today
    saturday, sunday = week[5], week[6]
    assert saturday.label == "sobota, 27.03.2027"
    assert [e.hours for e in saturday.entries] == [f"10:00{DASH}10:30"]
    assert [e.hours for e in sunday.entries] == ["00:30", "03:30", f"10:00{DASH}10:30"]
    with use_locale("en"):
        agenda = by_day(entries, days, date(2027, 3, 24), keep_empty=False)
    assert [d.label for d in agenda] == ["Saturday, 27.03.2027", "Sunday, 28.03.2027"]
