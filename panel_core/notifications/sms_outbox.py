"""Queueing a message: rendered now, sent by the dispatcher, never twice for one key."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import SmsMessage, SmsState, utcnow
from panel_core.notifications.sms_templates import render_sms
from panel_core.observability import current_request_id


async def enqueue_sms(
    session: AsyncSession,
    *,
    idempotency_key: str,
    purpose: str,
    phone_e164: str,
    locale: str,
    context: Mapping[str, Any],
    participant_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    own_text: Mapping[str, str] | None = None,
    bank_texts: Mapping[str, Mapping[str, str]] | None = None,
) -> bool:
    """Queue a message in the caller's transaction; False if the key was queued before.

    ``own_text`` is the case type's own wording of the purpose, where its descriptor has one;
    ``bank_texts`` the bank's wording of the panel's texts by purpose (its branding file).
    """
    body = render_sms(purpose, locale, context, own_text, (bank_texts or {}).get(purpose))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(SmsMessage)
        .values(
            id=uuid.uuid4(),
            idempotency_key=idempotency_key,
            participant_id=participant_id,
            case_id=case_id,
            purpose=purpose,
            phone_e164=phone_e164,
            locale=locale,
            body=body,
            state=SmsState.PENDING.value,
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
            request_id=current_request_id(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
