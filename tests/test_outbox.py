"""The outbox dispatcher against PostgreSQL and Redis: one claimant per row, leases that run
out, and an engine's "no such task" after a lost answer that is never taken for a refusal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core import constants as c
from panel_core.db.models import (
    PanelTask,
    SmsMessage,
    SmsState,
    SubmissionState,
    TaskState,
    TaskSubmission,
    utcnow,
)
from panel_core.engine.rest import DeliveryOutcome
from panel_core.notifications.sms_dispatcher import SmsOutbox
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.notifications.sms_providers import DEV_SENT_KEY, DevOutboxProvider
from panel_core.outbox import Outbox
from panel_core.tasks.completions import submit
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    VALID_ANSWERS,
    complete,
    eventually,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
)

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def queue_messages(sessions: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    batch = uuid.uuid4().hex[:8]
    async with sessions() as session:
        for n in range(count):
            await enqueue_sms(
                session,
                idempotency_key=f"test-race:{batch}:{n}",
                purpose=c.SMS_LOGIN_CODE,
                phone_e164="+48500000000",
                locale="pl",
                context={"code": "123456", "minutes": 5},
            )
        await session.commit()
        ids = await session.scalars(
            select(SmsMessage.id).where(SmsMessage.idempotency_key.like(f"test-race:{batch}:%"))
        )
        return [str(i) for i in ids]


async def test_dispatchers_racing_over_one_outbox_send_each_message_once(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Three claimants at once (two here, the workers' own): every message is asked of the
    provider exactly once. Committing after each row of a locked batch used to release the
    other rows' locks while they were still being sent, so a second claimant sent them too."""
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        ids = await queue_messages(sessions, 60)
        outboxes = [
            Outbox(sessions, SmsOutbox(DevOutboxProvider(redis)), concurrency=4) for _ in range(2)
        ]
        await asyncio.gather(*(outbox.drain() for outbox in outboxes))

        async def all_sent() -> bool:
            async with sessions() as session:
                states = await session.scalars(
                    select(SmsMessage.state).where(SmsMessage.id.in_([uuid.UUID(i) for i in ids]))
                )
                return all(state == SmsState.SENT for state in states)

        await eventually(all_sent, within=30)
        asked = await redis.hmget(DEV_SENT_KEY, ids)
    finally:
        await redis.aclose()
    assert [int(n or 0) for n in asked] == [1] * len(ids)


async def test_a_lease_outlives_a_dead_claimant_only_until_it_runs_out(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        [message_id] = await queue_messages(sessions, 1)
        # Long enough that the workers' outbox cannot take it while we look.
        dead = Outbox(sessions, SmsOutbox(DevOutboxProvider(redis), lease_seconds=3.0))
        claim = await dead.claim(uuid.UUID(message_id))
        assert claim is not None
        # The claimant dies here: it never sends, never settles.
        rival = Outbox(sessions, SmsOutbox(DevOutboxProvider(redis)))
        assert await rival.claim(uuid.UUID(message_id)) is None

        async def sent() -> bool:
            async with sessions() as session:
                message = await session.get(SmsMessage, uuid.UUID(message_id))
            return message is not None and message.state == SmsState.SENT

        await eventually(sent, within=30)
        # The dead claimant's outcome, had it come back, is not written over the real one.
        await dead.process(claim)
        async with sessions() as session:
            message = await session.get(SmsMessage, uuid.UUID(message_id))
        assert message is not None and message.attempts == 1
        assert int(await redis.hget(DEV_SENT_KEY, message_id) or 0) == 2
    finally:
        await redis.aclose()


async def test_the_engine_not_finding_a_task_we_completed_is_never_a_refusal(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A completion whose answer was lost (the sender died after the engine took it) is sent
    again: the engine answers "no such task", and the task stays completed."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
        consents = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_CONSENTS)
        sent = await complete(client, consents)
        assert sent.json()["delivered"] is True
    task_id = uuid.UUID(consents["id"])

    async def completed() -> PanelTask | None:
        async with sessions() as session:
            task = await session.get(PanelTask, task_id)
        return task if task is not None and task.state == TaskState.COMPLETED else None

    await eventually(completed, within=30)
    async with sessions() as session:
        await session.execute(
            update(TaskSubmission)
            .where(TaskSubmission.panel_task_id == task_id)
            .values(state=SubmissionState.PENDING, delivered_at=None, next_attempt_at=utcnow())
        )
        await session.commit()

    async def settled() -> TaskSubmission | None:
        async with sessions() as session:
            row = await session.scalar(
                select(TaskSubmission).where(TaskSubmission.panel_task_id == task_id)
            )
        return row if row is not None and row.state != SubmissionState.PENDING else None

    row = await eventually(settled, within=30)
    assert row.state == SubmissionState.DELIVERED
    assert "NOT_FOUND" in (row.last_error or "")
    assert await completed() is not None


async def test_a_row_due_later_is_not_claimed_before_its_time(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        [message_id] = await queue_messages(sessions, 1)
        async with sessions() as session:
            await session.execute(
                update(SmsMessage)
                .where(SmsMessage.id == uuid.UUID(message_id))
                .values(next_attempt_at=utcnow() + timedelta(hours=1))
            )
            await session.commit()
        outbox = Outbox(sessions, SmsOutbox(DevOutboxProvider(redis)))
        assert await outbox.claim(uuid.UUID(message_id)) is None
    finally:
        await redis.aclose()


async def test_a_row_written_with_its_lease_is_its_writers_to_deliver(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The BFF leases a participant's completion in the transaction that stores it: no
    dispatcher can take it between the commit and the BFF's own attempt."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
    consents = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_CONSENTS)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        completions = client.app.state.completions
        lease = completions.new_lease()
        async with sessions() as session:
            task = await session.get(PanelTask, uuid.UUID(consents["id"]))
            assert task is not None
            submission = await submit(
                session,
                task,
                answers=VALID_ANSWERS[credit.ELEMENT_TASK_CONSENTS],
                variables={},
                submitted_by="test",
                lease=lease,
            )
            await session.commit()
        # A dispatcher polling right now finds nothing to take.
        assert await completions.claim(submission.id) is None
        outcome = await completions.deliver_leased(submission.id, lease)
    assert outcome is not None and outcome.outcome is DeliveryOutcome.DELIVERED
    async with sessions() as session:
        row = await session.get(TaskSubmission, submission.id)
    assert row is not None and row.state == SubmissionState.DELIVERED
    assert row.attempts == 1 and row.lease_owner is None
