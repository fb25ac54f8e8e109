"""The reminder the day before: a periodic job of the workers, one SMS per appointment.

An appointment's reminder is due at ``PANEL_APPOINTMENT_REMINDER_HOUR`` (10:00) Europe/Warsaw
of the day before (``remind_at``, kept on the row and set anew when the bank moves it).
Each reminder is sent in one transaction of its own, holding the appointment's row: the SMS
is queued in the outbox and ``reminded_at`` is set together, so a crash leaves both or
neither, and two workers never take one appointment at once (PostgreSQL skips a row another
holds, and a committed reminder no longer matches). The SMS's idempotency key names the
appointment and its sequence, so even a repeated run queues one message per time told.

A reminder that could not go before the appointment's own day began (the workers were down
all evening) is dropped: "tomorrow" would be wrong by then. One that fails is left for the
next run and does not stop the others.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.appointments.messages import tell_participant
from panel_core.appointments.times import day_of, day_start
from panel_core.audit import log as audit
from panel_core.cases.closure import as_datetime
from panel_core.clock import Clock
from panel_core.db.models import Appointment, AppointmentState
from panel_core.periodic import Outcomes, every, log_outcomes, tell_each
from panel_core.settings import Settings

log = logging.getLogger("panel.appointments")


ReminderReport = Outcomes


class ReminderJob:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock

    async def run_once(self) -> ReminderReport:
        return await tell_each(
            self._sessions, self._next_due, self._remind, what="reminder of appointment"
        )

    async def run(self, stopped: asyncio.Event, interval_seconds: float) -> None:
        """The workers' loop: a run every ``interval_seconds`` until ``stopped``."""
        tell = log_outcomes(log, "appointment reminders")
        await every(stopped, interval_seconds, self.run_once, tell, what="appointment reminders")

    async def _next_due(
        self, session: AsyncSession, skipped: Collection[uuid.UUID]
    ) -> Appointment | None:
        query = (
            select(Appointment)
            .where(
                Appointment.state == AppointmentState.SCHEDULED,
                Appointment.reminded_at.is_(None),
                Appointment.remind_at <= as_datetime(self._clock.now()),
            )
            .order_by(Appointment.remind_at, Appointment.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skipped:
            query = query.where(Appointment.id.not_in(skipped))
        found: Appointment | None = await session.scalar(query)
        return found

    async def _remind(self, session: AsyncSession, appointment: Appointment) -> bool:
        now = as_datetime(self._clock.now())
        if now >= day_start(day_of(appointment.starts_at)):
            appointment.remind_at = None
            log.warning("reminder of appointment %s dropped: its day has begun", appointment.id)
            return False
        await self.tell(session, appointment)
        appointment.reminded_at = now
        audit.record(
            session,
            audit.APPOINTMENT_REMINDED,
            case_id=appointment.case_id,
            # In the details: an event with a participant id reads as the participant's act.
            participant=str(appointment.participant_id),
            appointment=str(appointment.id),
            sequence=appointment.sequence,
        )
        return True

    async def tell(self, session: AsyncSession, appointment: Appointment) -> None:
        await tell_participant(session, appointment, c.SMS_APPOINTMENT_REMINDER, self._settings)
