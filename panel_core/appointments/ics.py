"""An appointment as an iCalendar file (RFC 5545) a participant adds to their calendar.

Times are written in UTC (``DTSTART:20270329T080000Z``): every calendar shows them in its own
zone, and no VTIMEZONE has to describe Poland's clock changes. The UID stays the same when
the bank moves or cancels the appointment and SEQUENCE counts those changes, so a calendar
that imports the file again updates the event it has instead of adding a second one.
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import urlsplit

from icalendar import Calendar, Event

from panel_core.appointments.messages import where_text
from panel_core.appointments.service import ends_at, kind_label
from panel_core.appointments.times import aware
from panel_core.db.models import Appointment, AppointmentKind, AppointmentState, Case
from panel_core.i18n import gettext

PRODUCT = "-//Customer Panel for Camunda 8//Appointments//EN"
MEDIA_TYPE = "text/calendar; charset=utf-8"


def uid(appointment: Appointment, base_url: str) -> str:
    return f"appointment-{appointment.id}@{urlsplit(base_url).hostname or 'customer-panel'}"


def calendar_file(appointment: Appointment, case: Case, base_url: str) -> bytes:
    """The file, its texts in the current language."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid(appointment, base_url))
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", aware(appointment.updated_at).astimezone(UTC))
    event.add("dtstart", aware(appointment.starts_at).astimezone(UTC))
    event.add("dtend", ends_at(appointment).astimezone(UTC))
    event.add(
        "summary",
        gettext(
            "%(kind)s: %(subject)s (case %(case)s)",
            kind=kind_label(appointment.kind),
            subject=appointment.subject,
            case=case.case_number,
        ),
    )
    where = where_text(appointment)
    if appointment.kind == AppointmentKind.BRANCH:
        event.add("location", where)
    else:
        event.add("location", gettext("Phone call: %(who)s", who=where))
    event.add(
        "description",
        gettext(
            "Your appointment with the bank in case %(case)s. Details: %(link)s",
            case=case.case_number,
            link=f"{base_url.rstrip('/')}/case/",
        ),
    )
    cancelled = appointment.state == AppointmentState.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def file_name(case: Case, appointment: Appointment) -> str:
    day = aware(appointment.starts_at).astimezone(UTC).strftime("%Y%m%d")
    return f"appointment-{case.case_number}-{day}.ics"
