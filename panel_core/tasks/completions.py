"""Task completions: stored first, then delivered to the engine until it answers for good.

A completion is a row of the completion outbox (``task_submission``). The engine's answer
decides what happens to it:

* accepted: delivered;
* refused for good: the submission is rejected and the task goes back to the participant,
  who fixes it and sends it again as a new submission (every attempt stays on record);
* "no such task": the engine completed or cancelled it already, perhaps through an earlier
  attempt of ours whose answer was lost. That is never a refusal: the submission waits for
  the engine's own record of the task (``record_task_closed``), which settles it;
* anything else (engine down, busy, timeout): tried again with backoff.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import (
    ACTIVE_SUBMISSION_STATES,
    EngineTaskEnd,
    PanelTask,
    SubmissionState,
    TaskState,
    TaskSubmission,
    utcnow,
)
from panel_core.engine.rest import CamundaRestClient, Delivery, DeliveryOutcome
from panel_core.notifications.live import TASKS_CHANGED, publish_case_update
from panel_core.observability import current_request_id
from panel_core.outbox.dispatcher import AfterCommit, Lease, OutboxKind

log = logging.getLogger(__name__)

# The broker takes requests of up to 4 MB; a completion is a few ids and decisions, so
# anything near that is a defect of the form, refused before it is stored.
MAX_VARIABLES_BYTES = 256 * 1024


class TaskNotOpenError(RuntimeError):
    """The task has already been submitted, completed or withdrawn."""


class VariablesTooLargeError(ValueError):
    """The answers the process would receive exceed what a completion may carry."""


async def submit(
    session: AsyncSession,
    task: PanelTask,
    *,
    answers: Mapping[str, Any],
    variables: Mapping[str, Any],
    submitted_by: str,
    lease: Lease | None = None,
) -> TaskSubmission:
    """Store the completion; the caller commits. Delivery happens afterwards.

    A task whose last completion the engine refused is open again, and is sent as a new
    submission; the database allows one active submission per task.
    """
    if task.state != TaskState.OPEN:
        raise TaskNotOpenError(task.state)
    if len(msgspec.json.encode(dict(variables))) > MAX_VARIABLES_BYTES:
        raise VariablesTooLargeError(task.id)
    submission = TaskSubmission(
        id=uuid.uuid4(),
        panel_task_id=task.id,
        user_task_key=task.user_task_key,
        answers=dict(answers),
        variables=dict(variables),
        submitted_by=submitted_by,
        state=SubmissionState.PENDING,
        next_attempt_at=utcnow(),
        request_id=current_request_id(),
        **(lease.columns() if lease is not None else {}),
    )
    task.state = TaskState.SUBMITTED
    session.add(submission)
    return submission


async def latest_submission(session: AsyncSession, task_id: uuid.UUID) -> TaskSubmission | None:
    """The task's most recent submission, whatever its state."""
    return await session.scalar(
        select(TaskSubmission)
        .where(TaskSubmission.panel_task_id == task_id)
        .order_by(TaskSubmission.created_at.desc(), TaskSubmission.id)
        .limit(1)
    )


async def settle_by_engine_record(
    session: AsyncSession, user_task_key: int, state: TaskState
) -> None:
    """The engine's record closed the task: its active submission follows.

    Completed means the completion arrived (ours, or one whose answer we lost); cancelled
    means it never will.
    """
    completed = state == TaskState.COMPLETED
    await session.execute(
        update(TaskSubmission)
        .where(
            TaskSubmission.user_task_key == user_task_key,
            TaskSubmission.state.in_(
                [SubmissionState.PENDING, SubmissionState.UNCONFIRMED]
                if completed
                else list(ACTIVE_SUBMISSION_STATES)
            ),
        )
        .values(
            state=SubmissionState.DELIVERED if completed else SubmissionState.WITHDRAWN,
            delivered_at=utcnow() if completed else None,
        )
        .execution_options(synchronize_session=False)
    )


class CompletionOutbox(OutboxKind[TaskSubmission, Delivery]):
    name: ClassVar[str] = "completion"
    model: ClassVar[type[Any]] = TaskSubmission

    def __init__(
        self,
        engine: CamundaRestClient,
        *,
        redis: Redis | None = None,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
        lease_seconds: float = 60.0,
    ) -> None:
        super().__init__(
            lease_seconds=lease_seconds,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self._engine = engine
        self._redis = redis

    async def send(self, row: TaskSubmission) -> Delivery:
        return await self._engine.complete_user_task(row.user_task_key, row.variables)

    def outcome_of_error(self, row: TaskSubmission, error: BaseException) -> Delivery:
        return Delivery(DeliveryOutcome.RETRY, f"{type(error).__name__}: {error}")

    def label(self, outcome: Delivery) -> str:
        return {
            DeliveryOutcome.DELIVERED: "delivered",
            DeliveryOutcome.REJECTED: "rejected",
            DeliveryOutcome.NOT_FOUND: "unconfirmed",
            DeliveryOutcome.RETRY: "deferred",
        }[outcome.outcome]

    async def settle(
        self, session: AsyncSession, row: TaskSubmission, outcome: Delivery
    ) -> AfterCommit:
        row.attempts += 1
        if row.state != SubmissionState.PENDING:
            # The engine's record of the task settled it while this attempt was under way.
            return None
        if outcome.outcome is DeliveryOutcome.DELIVERED:
            row.state = SubmissionState.DELIVERED
            row.delivered_at = utcnow()
            row.last_error = None
            return None
        row.last_error = outcome.detail
        if outcome.outcome is DeliveryOutcome.NOT_FOUND:
            ended = await session.get(EngineTaskEnd, row.user_task_key)
            if ended is not None:
                # The engine's record came first: it says what became of the task.
                completed = ended.state == TaskState.COMPLETED
                row.state = SubmissionState.DELIVERED if completed else SubmissionState.WITHDRAWN
                row.delivered_at = utcnow() if completed else None
                return None
            row.state = SubmissionState.UNCONFIRMED
            log.info(
                "user task %s is gone from the engine; its record will settle the completion",
                row.user_task_key,
            )
            return None
        if outcome.outcome is DeliveryOutcome.REJECTED:
            row.state = SubmissionState.REJECTED
            task = await session.scalar(
                select(PanelTask).where(PanelTask.id == row.panel_task_id).with_for_update()
            )
            log.warning(
                "engine refused the completion of user task %s: %s",
                row.user_task_key,
                outcome.detail,
            )
            if task is None or task.state != TaskState.SUBMITTED:
                # The engine's record closed the task meanwhile; nothing to give back.
                return None
            task.state = TaskState.OPEN
            return self._announce(task.case_id)
        self.retry_later(row, outcome.detail)
        return None

    def _announce(self, case_id: uuid.UUID | None) -> AfterCommit:
        redis = self._redis
        if redis is None or case_id is None:
            return None

        async def publish() -> None:
            await publish_case_update(redis, case_id, TASKS_CHANGED)

        return publish
