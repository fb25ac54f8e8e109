"""The SMS outbox: a provider outage delays messages but loses none, and sends none twice.

Each message's id is the reference the provider deduplicates on (SMSAPI's ``idx``), so a
retry after a lost answer is recognised by the provider as the message it already sent.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import SmsMessage, SmsState, utcnow
from panel_core.notifications.sms_providers import SendOutcome, SendResult, SmsProvider
from panel_core.outbox.dispatcher import AfterCommit, OutboxKind

log = logging.getLogger(__name__)


class SmsOutbox(OutboxKind[SmsMessage, SendResult]):
    name: ClassVar[str] = "sms"
    model: ClassVar[type[Any]] = SmsMessage

    def __init__(
        self,
        provider: SmsProvider,
        *,
        max_attempts: int = 10,
        retry_initial_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        lease_seconds: float = 60.0,
    ) -> None:
        super().__init__(
            lease_seconds=lease_seconds,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self._provider = provider
        self._max_attempts = max_attempts

    async def send(self, row: SmsMessage) -> SendResult:
        return await self._provider.send(row.phone_e164, row.body or "", reference=str(row.id))

    def outcome_of_error(self, row: SmsMessage, error: BaseException) -> SendResult:
        return SendResult(SendOutcome.RETRY, detail=f"{type(error).__name__}: {error}")

    async def settle(
        self, session: AsyncSession, row: SmsMessage, outcome: SendResult
    ) -> AfterCommit:
        row.attempts += 1
        row.provider = self._provider.name
        if outcome.outcome is SendOutcome.SENT:
            row.state = SmsState.SENT
            row.sent_at = utcnow()
            row.provider_message_id = outcome.provider_message_id
            row.last_error = None
            row.body = None
            return None
        row.last_error = outcome.detail
        if outcome.outcome is SendOutcome.REJECTED or row.attempts >= self._max_attempts:
            row.state = SmsState.FAILED
            row.body = None
            log.error(
                "SMS %s (%s) given up after %s attempt(s): %s",
                row.id,
                row.purpose,
                row.attempts,
                outcome.detail,
            )
            return None
        self.retry_later(row, outcome.detail)
        return None
