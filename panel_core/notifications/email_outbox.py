"""Queueing an e-mail: written whole in the caller's transaction, sent by the dispatcher
(``email_dispatcher``), never twice for one key."""

from __future__ import annotations

import uuid
from email.utils import parseaddr

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import EmailMessage, EmailState, utcnow
from panel_core.observability import current_request_id

FALLBACK_DOMAIN = "panel.invalid"


def message_id(row_id: uuid.UUID, mail_from: str) -> str:
    """The Message-ID of a queued e-mail, in the sender's domain, the same on every attempt."""
    _name, address = parseaddr(mail_from)
    domain = address.rpartition("@")[2].strip() or FALLBACK_DOMAIN
    return f"<{row_id.hex}@{domain}>"


async def enqueue_email(
    session: AsyncSession,
    *,
    idempotency_key: str,
    purpose: str,
    to_address: str,
    locale: str,
    subject: str,
    body: str,
    mail_from: str,
    participant_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    attachment: bytes | None = None,
    attachment_name: str | None = None,
    attachment_type: str | None = None,
) -> uuid.UUID | None:
    """Queue a message in the caller's transaction: its id, or None if the key was queued
    before."""
    row_id = uuid.uuid4()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(EmailMessage)
        .values(
            id=row_id,
            idempotency_key=idempotency_key,
            participant_id=participant_id,
            case_id=case_id,
            purpose=purpose,
            to_address=to_address,
            locale=locale,
            subject=subject,
            body=body,
            attachment=attachment,
            attachment_name=attachment_name,
            attachment_type=attachment_type,
            state=EmailState.PENDING.value,
            message_id=message_id(row_id, mail_from),
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
            request_id=current_request_id(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    result = await session.execute(statement)
    return row_id if getattr(result, "rowcount", 0) else None
