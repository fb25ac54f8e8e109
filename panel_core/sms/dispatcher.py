"""Sends queued messages with backoff; a provider outage delays messages but loses none."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import SmsMessage, SmsState, utcnow
from panel_core.sms.providers import SendOutcome, SmsProvider

log = logging.getLogger(__name__)


class SmsDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        provider: SmsProvider,
        *,
        max_attempts: int = 10,
        retry_initial_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._max_attempts = max_attempts
        self._initial = retry_initial_seconds
        self._max = retry_max_seconds

    async def send_due(self, limit: int = 50) -> int:
        """Send every message whose next attempt is due; returns how many were tried."""
        async with self._sessions() as session:
            due = (
                await session.scalars(
                    select(SmsMessage)
                    .where(
                        SmsMessage.state == SmsState.PENDING,
                        SmsMessage.next_attempt_at <= utcnow(),
                    )
                    .order_by(SmsMessage.next_attempt_at)
                    .limit(limit)
                    # Several worker processes share the outbox; each message goes to one.
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for message in due:
                await self._attempt(message)
                await session.commit()
            return len(due)

    async def _attempt(self, message: SmsMessage) -> None:
        result = await self._provider.send(
            message.phone_e164, message.body or "", reference=str(message.id)
        )
        message.attempts += 1
        message.provider = self._provider.name
        if result.outcome is SendOutcome.SENT:
            message.state = SmsState.SENT
            message.sent_at = utcnow()
            message.provider_message_id = result.provider_message_id
            message.last_error = None
            message.body = None
            return
        message.last_error = result.detail
        if result.outcome is SendOutcome.REJECTED or message.attempts >= self._max_attempts:
            message.state = SmsState.FAILED
            message.body = None
            log.error(
                "SMS %s (%s) given up after %s attempt(s): %s",
                message.id,
                message.purpose,
                message.attempts,
                result.detail,
            )
            return
        delay = min(self._max, self._initial * 2 ** (message.attempts - 1))
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.warning("SMS %s deferred (attempt %s): %s", message.id, message.attempts, result.detail)
