"""The SMS to a participant who has not read the bank's answer: a periodic job of the
workers.

An answer not read ``PANEL_CHAT_AWAY_SMS_AFTER_SECONDS`` after it was sent brings one SMS
("You have a new message from the bank about case …", never what it says), and a
conversation brings at most one per ``PANEL_CHAT_AWAY_SMS_GAP_SECONDS`` (an hour), however
many answers follow. Each is queued in one transaction of its own, holding the
conversation's row: the SMS goes into the outbox and ``away_sms_at`` is set together, two
workers never take one conversation at once (PostgreSQL skips a row another holds), and the
SMS's idempotency key names the conversation and the answer, so a repeated run queues
nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.branding import bank_sms
from panel_core.cases import closure
from panel_core.cases.closure import as_datetime
from panel_core.cases.service import case_link
from panel_core.clock import Clock
from panel_core.db.models import Case, Conversation, Participant
from panel_core.i18n import DEFAULT_LOCALE, supported
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.periodic import Outcomes, every, log_outcomes, tell_each
from panel_core.settings import Settings

log = logging.getLogger("panel.conversations")


AwayReport = Outcomes


class AwaySmsJob:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock

    async def run_once(self) -> AwayReport:
        return await tell_each(
            self._sessions, self._next_due, self._tell, what="the SMS of conversation"
        )

    async def run(self, stopped: asyncio.Event, interval_seconds: float) -> None:
        """The workers' loop: a run every ``interval_seconds`` until ``stopped``."""
        tell = log_outcomes(log, "unread answers")
        await every(stopped, interval_seconds, self.run_once, tell, what="unread answers")

    async def _next_due(
        self, session: AsyncSession, skipped: Collection[uuid.UUID]
    ) -> Conversation | None:
        now = as_datetime(self._clock.now())
        answered_before = now - timedelta(seconds=self._settings.chat_away_sms_after_seconds)
        last_sms_before = now - timedelta(seconds=self._settings.chat_away_sms_gap_seconds)
        query = (
            select(Conversation)
            .where(
                Conversation.last_staff_message_at.is_not(None),
                Conversation.last_staff_message_at <= answered_before,
                or_(
                    Conversation.participant_read_at.is_(None),
                    Conversation.participant_read_at < Conversation.last_staff_message_at,
                ),
                or_(
                    Conversation.away_sms_at.is_(None),
                    (Conversation.away_sms_at < Conversation.last_staff_message_at)
                    & (Conversation.away_sms_at <= last_sms_before),
                ),
            )
            .order_by(Conversation.last_staff_message_at, Conversation.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skipped:
            query = query.where(Conversation.id.not_in(skipped))
        found: Conversation | None = await session.scalar(query)
        return found

    async def _tell(self, session: AsyncSession, conversation: Conversation) -> bool:
        now = as_datetime(self._clock.now())
        answered = conversation.last_staff_message_at
        # Set whatever happens below: a conversation nobody can be told of is not looked at
        # again until its next answer.
        conversation.away_sms_at = now
        person = await session.get(Participant, conversation.participant_id)
        case = await session.get(Case, conversation.case_id)
        if (
            person is None
            or case is None
            or not person.phone_e164
            # After the closure the Messages area may no longer be shown to them.
            or closure.participant_access(case, now) != closure.EVERYTHING
        ):
            return False
        locale = supported(person.locale) or DEFAULT_LOCALE
        stamp = answered.isoformat() if answered is not None else ""
        queued = await enqueue_sms(
            session,
            idempotency_key=f"{c.SMS_MESSAGE_WAITING}:{conversation.id}:{stamp}",
            purpose=c.SMS_MESSAGE_WAITING,
            phone_e164=person.phone_e164,
            locale=locale,
            context={
                "case_number": case.case_number,
                "link": case_link(self._settings.public_base_url, case.case_number),
            },
            participant_id=person.id,
            case_id=case.id,
            bank_texts=bank_sms(self._settings.branding_file),
        )
        audit.record(
            session,
            audit.CONVERSATION_SMS_SENT,
            case_id=case.id,
            participant=str(person.id),
            conversation=str(conversation.id),
            queued=queued,
        )
        return queued
