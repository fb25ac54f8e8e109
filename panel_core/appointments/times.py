"""Appointment times: typed in Europe/Warsaw, stored in UTC, shown in Europe/Warsaw again.

Poland changes its clocks twice a year. On the last Sunday of March 02:00 to 03:00 does not
happen: a time in that hour is refused, since it names no moment. On the last Sunday of
October 02:00 to 03:00 happens twice: a time in that hour is refused too, since it names two
moments an hour apart and the SMS, the page and the calendar file could each be read as
either. Every other local time names exactly one moment, and is kept as that moment in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date

from panel_core.i18n import N_, current_locale, gettext

ZONE = ZoneInfo("Europe/Warsaw")
# Between the two ends of a span of time, as in "10:00 to 10:30": an en dash.
DASH = "\u2013"

BAD_DATE = N_("Enter the date as day, month and year, e.g. 29.03.2027.")
BAD_TIME = N_("Enter the time as hours and minutes, e.g. 14:30.")
NO_SUCH_TIME = N_(
    "On %(date)s the clocks go forward from 02:00 to 03:00, so %(time)s does not exist "
    "that day. Choose another time."
)
TWICE_THAT_DAY = N_(
    "On %(date)s the clocks go back from 03:00 to 02:00, so %(time)s happens twice that day. "
    "Choose a time before 02:00 or from 03:00."
)


class TimeProblem(ValueError):
    """A time that cannot be kept; the message is a msgid with its parameters."""

    def __init__(self, message: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.params = params or {}

    def translated(self) -> str:
        return gettext(self.message, **self.params)


def parse_day(text: str) -> date:
    """A date field's value (YYYY-MM-DD, as browsers send it)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimeProblem(BAD_DATE) from exc


def parse_clock(text: str) -> time:
    """A time field's value (HH:MM), to the minute."""
    text = text.strip()
    try:
        parsed = time.fromisoformat(text)
    except ValueError as exc:
        raise TimeProblem(BAD_TIME) from exc
    if len(text) < 4 or parsed.tzinfo is not None:
        raise TimeProblem(BAD_TIME)
    return parsed.replace(second=0, microsecond=0)


def local_moment(day: date, clock: time) -> datetime:
    """The one moment (in UTC) a local date and time name; see the module docstring."""
    naive = datetime.combine(day, clock)
    earlier = naive.replace(tzinfo=ZONE, fold=0)
    later = naive.replace(tzinfo=ZONE, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        params = {"date": day.strftime("%d.%m.%Y"), "time": clock.strftime("%H:%M")}
        # A time in the gap comes back from UTC as another wall-clock time.
        round_trip = earlier.astimezone(UTC).astimezone(ZONE).replace(tzinfo=None)
        if round_trip != naive:
            raise TimeProblem(NO_SUCH_TIME, params)
        raise TimeProblem(TWICE_THAT_DAY, params)
    return earlier.astimezone(UTC)


def parse_local(day_text: str, clock_text: str) -> datetime:
    """The moment (UTC) of a date field and a time field typed in Europe/Warsaw."""
    return local_moment(parse_day(day_text), parse_clock(clock_text))


def aware(moment: datetime) -> datetime:
    """A database time as an aware UTC datetime (SQLite gives them back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local(moment: datetime) -> datetime:
    return aware(moment).astimezone(ZONE)


def day_start(day: date) -> datetime:
    """When a local day begins, in UTC (midnight is never skipped or repeated in Poland)."""
    return datetime.combine(day, time(0), tzinfo=ZONE).astimezone(UTC)


def day_of(moment: datetime) -> date:
    return local(moment).date()


def week_of(day: date) -> date:
    """The Monday of the week the day is in."""
    return day - timedelta(days=day.weekday())


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]


def clock_text(moment: datetime) -> str:
    """The local hour and minute, as the page and the SMS show them."""
    return local(moment).strftime("%H:%M")


def when_text(moment: datetime) -> str:
    """The local date and time, as the page and the SMS show them."""
    return local(moment).strftime("%d.%m.%Y %H:%M")


def day_label(day: date, locale: str | None = None) -> str:
    """ "poniedziałek, 29.03.2027": the weekday in the reader's language, and the date."""
    weekday = format_date(day, "EEEE", locale=locale or current_locale())
    return f"{weekday}, {day.strftime('%d.%m.%Y')}"


def remind_at(starts_at: datetime, hour: int) -> datetime:
    """When the reminder of an appointment is due: ``hour`` o'clock the day before."""
    before = day_of(starts_at) - timedelta(days=1)
    return datetime.combine(before, time(hour), tzinfo=ZONE).astimezone(UTC)
