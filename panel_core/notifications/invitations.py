"""Inviting a participant: their access code and the SMS with the case link, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.branding import bank_sms
from panel_core.cases import case_types
from panel_core.db.models import Case, Participant
from panel_core.identity.service import LoginService
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.settings import Settings


class InvitationError(ValueError):
    """The participant cannot be invited; the message says what is wrong with the model."""


def invitation_link(base_url: str, case_number: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/login?{urlencode({'case': case_number, 'code': code})}"


async def invite_participant(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    login: LoginService,
    *,
    case_id: uuid.UUID,
    participant_id: uuid.UUID,
) -> bool:
    """Create the access and queue the SMS; False when the participant was invited already.

    Zeebe delivers jobs at least once: the row lock makes two deliveries wait for each other,
    and the second sees ``invited_at`` and sends nothing.
    """
    async with sessions() as session:
        person = await session.scalar(
            select(Participant).where(Participant.id == participant_id).with_for_update()
        )
        case = await session.get(Case, case_id)
        if person is None or case is None or person.case_id != case.id:
            raise InvitationError(
                f"Participant {participant_id} is not registered in case {case_id}."
            )
        if person.invited_at is not None:
            return False
        if not person.phone_e164:
            raise InvitationError(f"Participant {person.id} has no phone number to invite.")
        code = await login.issue_invitation_code(person)
        descriptor = await case_types.of_case(session, case)
        await enqueue_sms(
            session,
            idempotency_key=f"{c.SMS_INVITATION}:{person.id}",
            purpose=c.SMS_INVITATION,
            phone_e164=person.phone_e164,
            locale=person.locale,
            context={
                "case_number": case.case_number,
                "link": invitation_link(settings.public_base_url, case.case_number, code),
                "code": code,
                "valid_days": max(1, settings.invitation_code_ttl_seconds // 86400),
            },
            participant_id=person.id,
            case_id=case.id,
            own_text=descriptor.messages.get(c.SMS_INVITATION),
            bank_texts=bank_sms(settings.branding_file),
        )
        person.invited_at = datetime.now(UTC)
        audit.record(session, audit.INVITATION_SENT, case_id=case.id, participant_id=person.id)
        await session.commit()
        return True
