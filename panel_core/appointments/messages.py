"""What an appointment's SMS say, in the participant's language, queued through the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments.times import when_text
from panel_core.branding import bank_sms
from panel_core.cases.service import case_link
from panel_core.db.models import Appointment, AppointmentKind, Case, Participant
from panel_core.i18n import DEFAULT_LOCALE, N_, gettext, supported, use_locale
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.settings import Settings

# How an SMS names the kind, inside a sentence.
KIND_IN_SMS = {
    AppointmentKind.BRANCH: N_("a branch visit"),
    AppointmentKind.PHONE: N_("a phone call"),
}
CALLS_YOU = N_("the bank calls you")
CALLS_NUMBER = N_("the bank calls %(phone)s")


def where_text(appointment: Appointment) -> str:
    """Where it happens, in the current language: the branch's address, or who calls."""
    if appointment.kind == AppointmentKind.BRANCH:
        return appointment.place or ""
    if appointment.phone_e164:
        return gettext(CALLS_NUMBER, phone=appointment.phone_e164)
    return gettext(CALLS_YOU)


def sms_context(appointment: Appointment, case: Case, base_url: str) -> dict[str, Any]:
    """The placeholders of every appointment SMS (sms_templates.PANEL_TEXTS), in the
    current language."""
    return {
        "case_number": case.case_number,
        "when": when_text(appointment.starts_at),
        "kind": gettext(KIND_IN_SMS[appointment.kind]),
        "where": where_text(appointment),
        "minutes": appointment.duration_minutes,
        "subject": appointment.subject,
        "link": case_link(base_url, case.case_number),
    }


async def tell_participant(
    session: AsyncSession, appointment: Appointment, purpose: str, settings: Settings
) -> bool:
    """Queue the SMS of ``purpose`` about the appointment as it is now; False if the
    participant has no number left (a purged case) or it was queued before.

    The key names the appointment and its sequence: each time the participant is told is
    one message, however often the request or job that tells them is repeated.
    """
    person = await session.get(Participant, appointment.participant_id)
    case = await session.get(Case, appointment.case_id)
    if person is None or case is None or not person.phone_e164:
        return False
    locale = supported(person.locale) or DEFAULT_LOCALE
    with use_locale(locale):
        context = sms_context(appointment, case, settings.public_base_url)
    return await enqueue_sms(
        session,
        idempotency_key=f"{purpose}:{appointment.id}:{appointment.sequence}",
        purpose=purpose,
        phone_e164=person.phone_e164,
        locale=locale,
        context=context,
        participant_id=person.id,
        case_id=case.id,
        bank_texts=bank_sms(settings.branding_file),
    )
