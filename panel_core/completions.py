"""Task completions: stored first, then delivered to the engine until it answers for good."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import PanelTask, SubmissionState, TaskState, TaskSubmission, utcnow
from panel_core.engine.rest import CamundaRestClient, DeliveryOutcome

log = logging.getLogger(__name__)


class TaskNotOpenError(RuntimeError):
    """The task has already been submitted, completed or withdrawn."""


async def submit(
    session: AsyncSession,
    task: PanelTask,
    *,
    answers: Mapping[str, Any],
    variables: Mapping[str, Any],
    submitted_by: str,
) -> TaskSubmission:
    """Store the participant's completion; the caller commits. Delivery happens afterwards."""
    if task.state != TaskState.OPEN:
        raise TaskNotOpenError(task.state)
    submission = TaskSubmission(
        id=uuid.uuid4(),
        panel_task_id=task.id,
        user_task_key=task.user_task_key,
        answers=dict(answers),
        variables=dict(variables),
        submitted_by=submitted_by,
        state=SubmissionState.PENDING,
        next_attempt_at=utcnow(),
    )
    task.state = TaskState.SUBMITTED
    session.add(submission)
    return submission


def _backoff(attempts: int, initial: float, maximum: float) -> timedelta:
    return timedelta(seconds=min(maximum, initial * 2 ** max(0, attempts - 1)))


class CompletionDelivery:
    """Sends stored completions to the engine, one row lock per submission."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: CamundaRestClient,
        *,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._initial = retry_initial_seconds
        self._max = retry_max_seconds

    async def deliver(self, submission_id: uuid.UUID) -> SubmissionState | None:
        """Try one pending submission now; None if another process holds it or it is done."""
        async with self._sessions() as session:
            # SKIP LOCKED: the BFF's immediate attempt and the dispatcher never both send it.
            submission = (
                await session.execute(
                    select(TaskSubmission)
                    .where(
                        TaskSubmission.id == submission_id,
                        TaskSubmission.state == SubmissionState.PENDING,
                    )
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if submission is None:
                return None
            state = await self._attempt(session, submission)
            await session.commit()
            return state

    async def deliver_due(self, limit: int = 50) -> int:
        """Deliver every submission whose next attempt is due; returns how many were tried."""
        async with self._sessions() as session:
            due = (
                (
                    await session.execute(
                        select(TaskSubmission)
                        .where(
                            TaskSubmission.state == SubmissionState.PENDING,
                            TaskSubmission.next_attempt_at <= utcnow(),
                        )
                        .order_by(TaskSubmission.next_attempt_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            for submission in due:
                await self._attempt(session, submission)
                # Commit per submission so one slow engine call never holds back the others'
                # results.
                await session.commit()
            return len(due)

    async def _attempt(self, session: AsyncSession, submission: TaskSubmission) -> SubmissionState:
        result = await self._engine.complete_user_task(
            submission.user_task_key, submission.variables
        )
        submission.attempts += 1
        if result.outcome is DeliveryOutcome.DELIVERED:
            submission.state = SubmissionState.DELIVERED
            submission.delivered_at = utcnow()
            submission.last_error = None
        elif result.outcome is DeliveryOutcome.REJECTED:
            submission.state = SubmissionState.REJECTED
            submission.last_error = result.detail
            task = await session.get(PanelTask, submission.panel_task_id)
            if task is not None and task.state == TaskState.SUBMITTED:
                # Give the participant the task back unless the engine closed it meanwhile
                # (then the engine's record marks it completed or withdrawn).
                task.state = TaskState.OPEN
            log.warning(
                "engine rejected completion of user task %s: %s",
                submission.user_task_key,
                result.detail,
            )
        else:
            submission.last_error = result.detail
            submission.next_attempt_at = utcnow() + _backoff(
                submission.attempts, self._initial, self._max
            )
            log.info(
                "completion of user task %s deferred (attempt %s): %s",
                submission.user_task_key,
                submission.attempts,
                result.detail,
            )
        return submission.state
