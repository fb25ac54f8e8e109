"""The retention purge: a closed case's personal data goes when its descriptor says so.

At closure the case takes its purge date and the kinds of data to purge from the case type's
``afterClosure`` rule (``closure``). When the date passes, this job removes them and keeps
what is not personal: the case's record (type, channel, status, dates, the participants'
roles and numbering) and the audit log.

Each case is purged in one transaction of its own, holding its row, so two workers never
purge one case at once (PostgreSQL skips a row another holds) and a crash leaves either all
of a case's purge or none of it. Stored files are deleted before that transaction commits:
deleting a file that is gone is not an error, so a case whose commit failed is purged again,
files included, on the next run. A case that fails is left for the next run and does not
stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.audit import log as audit
from panel_core.cases.case_types import PURGEABLE
from panel_core.cases.closure import as_datetime
from panel_core.clock import Clock
from panel_core.db.models import (
    Appointment,
    AppointmentChangeRequest,
    Case,
    Conversation,
    ConversationMessage,
    Document,
    EmailMessage,
    EngineProcessInstance,
    EngineVariable,
    PanelTask,
    Participant,
    SignatureRecord,
    SmsMessage,
    StaffNote,
    TaskDraft,
    TaskSubmission,
)
from panel_core.documents.storage import DocumentStorage
from panel_core.metrics import RETENTION_CASES, RETENTION_ROWS
from panel_core.periodic import every, one_at_a_time

log = logging.getLogger("panel.retention")


@dataclass(slots=True)
class PurgeReport:
    """What one run did: cases purged and failed, and the rows it cleared, by kind."""

    purged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)


class RetentionJob:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        storage: DocumentStorage,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._storage = storage
        self._clock = clock

    async def due(self) -> int:
        """How many closed cases wait for their purge (the workers' gauge)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.purge_after <= as_datetime(self._clock.now()), Case.purged_at.is_(None))
            )
        return int(count or 0)

    async def run_once(self, limit: int | None = None) -> PurgeReport:
        """Purge every case that is due (at most ``limit``), one transaction each."""
        report = PurgeReport()
        if limit is not None and limit <= 0:
            return report
        due = one_at_a_time(
            self._sessions,
            self._next_due,
            self._purge,
            what="purging case",
            name=lambda case: case.case_number,
        )
        async with contextlib.aclosing(due) as purges:
            async for done in purges:
                if done.failed or done.result is None:
                    # Left for the next run: one case's failure must not stop the others.
                    report.failed.append(done.name)
                    RETENTION_CASES.labels("failed").inc()
                    continue
                report.purged.append(done.name)
                report.removed.update(done.result)
                RETENTION_CASES.labels("purged").inc()
                for kind, count in done.result.items():
                    RETENTION_ROWS.labels(kind).inc(count)
                if limit is not None and len(report.purged) >= limit:
                    break
        return report

    async def run(self, stopped: asyncio.Event, interval_seconds: float) -> None:
        """The workers' loop: a run every ``interval_seconds`` until ``stopped``."""

        def tell(report: PurgeReport) -> None:
            if report.purged or report.failed:
                log.info(
                    "retention: %d case(s) purged, %d failed",
                    len(report.purged),
                    len(report.failed),
                )

        await every(stopped, interval_seconds, self.run_once, tell, what="retention")

    async def _next_due(self, session: AsyncSession, skipped: Collection[uuid.UUID]) -> Case | None:
        now = as_datetime(self._clock.now())
        query = (
            select(Case)
            .where(Case.purge_after <= now, Case.purged_at.is_(None))
            .order_by(Case.purge_after, Case.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skipped:
            query = query.where(Case.id.not_in(skipped))
        return await session.scalar(query)

    async def _purge(self, session: AsyncSession, case: Case) -> Counter[str]:
        kinds = set(case.purge_kinds if case.purge_kinds is not None else PURGEABLE)
        removed: Counter[str] = Counter()
        tasks = select(PanelTask.id).where(PanelTask.case_id == case.id)
        if "documents" in kinds:
            keys = (
                await session.scalars(
                    select(Document.storage_key)
                    .where(Document.case_id == case.id)
                    .order_by(Document.uploaded_at, Document.id)
                )
            ).all()
            for key in keys:
                await self._storage.delete(key)
            removed["documents"] += _rows(
                await session.execute(delete(Document).where(Document.case_id == case.id))
            )
        if "signatures" in kinds:
            removed["signatures"] += _rows(
                await session.execute(
                    delete(SignatureRecord).where(SignatureRecord.case_id == case.id)
                )
            )
        if "answers" in kinds:
            removed["answers"] += _rows(
                await session.execute(
                    update(TaskSubmission)
                    .where(TaskSubmission.panel_task_id.in_(tasks))
                    .values(answers={}, variables={})
                )
            )
            removed["answers"] += await self._purge_variables(session, case)
            case.status_reason = None
        if "drafts" in kinds:
            removed["drafts"] += _rows(
                await session.execute(delete(TaskDraft).where(TaskDraft.panel_task_id.in_(tasks)))
            )
        if "appointments" in kinds:
            removed["appointments"] += await _purge_appointments(session, case)
        elif "phones" in kinds:
            # Appointments kept beyond the purge lose the number the bank was to call.
            removed["phones"] += _rows(
                await session.execute(
                    update(Appointment)
                    .where(Appointment.case_id == case.id, Appointment.phone_e164.is_not(None))
                    .values(phone_e164=None)
                )
            )
        if "notes" in kinds:
            removed["notes"] += _rows(
                await session.execute(delete(StaffNote).where(StaffNote.case_id == case.id))
            )
        if "conversations" in kinds:
            # Their messages go with them (ON DELETE CASCADE), counted first.
            removed["conversations"] += _rows(
                await session.execute(
                    delete(ConversationMessage).where(ConversationMessage.case_id == case.id)
                )
            )
            removed["conversations"] += _rows(
                await session.execute(delete(Conversation).where(Conversation.case_id == case.id))
            )
        if "identity" in kinds:
            indexes = set(
                await session.scalars(
                    select(Participant.pesel_index).where(
                        Participant.case_id == case.id, Participant.pesel_index.is_not(None)
                    )
                )
            )
            removed["identity"] += await _clear_participants(
                session, case, Participant.pesel_fragment_hash, Participant.pesel_index
            )
            removed["notes"] += await _purge_customer_notes(session, indexes)
        if "phones" in kinds:
            # The participants' contact details: phone numbers and e-mail addresses.
            removed["phones"] += await _clear_participants(
                session, case, Participant.phone_e164, Participant.phone_index, Participant.email
            )
            # A text holds the number it went to and, in its body, links and codes.
            removed["phones"] += _rows(
                await session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.case_id == case.id, SmsMessage.phone_e164 != "")
                    .values(phone_e164="", body=None)
                )
            )
            # An e-mail holds its address and, in its body or attachment, what it carried.
            removed["phones"] += _rows(
                await session.execute(
                    update(EmailMessage)
                    .where(EmailMessage.case_id == case.id, EmailMessage.to_address != "")
                    .values(to_address="", subject=None, body=None, attachment=None)
                )
            )
        now = as_datetime(self._clock.now())
        case.purged_at = now
        audit.record(
            session,
            audit.CASE_PURGED,
            case_id=case.id,
            kinds=sorted(kinds),
            removed=dict(sorted(removed.items())),
        )
        return removed

    async def _purge_variables(self, session: AsyncSession, case: Case) -> int:
        if case.process_instance_key is None:
            return 0
        instances = select(EngineProcessInstance.process_instance_key).where(
            EngineProcessInstance.root_process_instance_key == case.process_instance_key
        )
        return _rows(
            await session.execute(
                delete(EngineVariable).where(
                    or_(
                        EngineVariable.process_instance_key == case.process_instance_key,
                        EngineVariable.process_instance_key.in_(instances),
                    )
                )
            )
        )


async def _purge_customer_notes(session: AsyncSession, indexes: set[str | None]) -> int:
    """Notes on customers no case knows any more: their last case's identity just went."""
    known = select(Participant.id).where(Participant.pesel_index == StaffNote.customer_index)
    result = await session.execute(
        delete(StaffNote).where(StaffNote.customer_index.in_(indexes), ~known.exists())
    )
    return _rows(result)


async def _purge_appointments(session: AsyncSession, case: Case) -> int:
    """The case's appointments and the requests to move them, rows and all."""
    appointments = select(Appointment.id).where(Appointment.case_id == case.id)
    requests = await session.execute(
        delete(AppointmentChangeRequest).where(
            AppointmentChangeRequest.appointment_id.in_(appointments)
        )
    )
    removed = await session.execute(delete(Appointment).where(Appointment.case_id == case.id))
    return _rows(requests) + _rows(removed)


async def _clear_participants(session: AsyncSession, case: Case, *columns: Any) -> int:
    """Set these columns of the case's participants to NULL; the rows that had any."""
    result = await session.execute(
        update(Participant)
        .where(Participant.case_id == case.id, or_(*(column.is_not(None) for column in columns)))
        .values({column.key: None for column in columns})
    )
    return _rows(result)


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
