"""A completion the engine refuses for good goes back to the participant, who sends it again.

The refusal is the real engine's: the broker refuses any request over its ``maxMessageSize``
(answering 500 MALFORMED_REQUEST), so a submission whose variables a defective form blew up
to 5 MB is refused for good. The BFF that takes the submission cannot reach the engine (its
one immediate attempt fails and waits a minute), so the test can make the stored
completion oversized before the workers' outbox delivers it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.db.models import (
    PanelTask,
    SignatureRecord,
    SubmissionState,
    TaskState,
    TaskSubmission,
    utcnow,
)
from panel_core.settings import Settings
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    VALID_ANSWERS,
    complete,
    csrf_headers,
    cut_off,
    eventually,
    forms_done_until_signing,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
    sign_task,
)

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

OVERSIZED = {"defect": "x" * (5 * 1024 * 1024)}


@asynccontextmanager
async def participant(
    settings: Settings, participant_id: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, participant_id)
        yield client


async def submissions_of(
    sessions: async_sessionmaker[AsyncSession], task_id: str
) -> list[TaskSubmission]:
    async with sessions() as session:
        rows = await session.scalars(
            select(TaskSubmission)
            .where(TaskSubmission.panel_task_id == uuid.UUID(task_id))
            .order_by(TaskSubmission.created_at)
        )
        return list(rows)


async def make_oversized_and_due(sessions: async_sessionmaker[AsyncSession], task_id: str) -> None:
    async with sessions() as session:
        changed = await session.execute(
            update(TaskSubmission)
            .where(
                TaskSubmission.panel_task_id == uuid.UUID(task_id),
                TaskSubmission.state == SubmissionState.PENDING,
            )
            .values(variables=OVERSIZED, next_attempt_at=utcnow())
        )
        await session.commit()
    assert getattr(changed, "rowcount", 0) == 1


async def refused_and_reopened(sessions: async_sessionmaker[AsyncSession], task_id: str) -> None:
    async def probe() -> bool:
        rows = await submissions_of(sessions, task_id)
        async with sessions() as session:
            task = await session.get(PanelTask, uuid.UUID(task_id))
        return (
            bool(rows)
            and rows[-1].state == SubmissionState.REJECTED
            and task is not None
            and task.state == TaskState.OPEN
        )

    await eventually(probe, within=60)


async def test_a_refused_completion_is_fixed_and_sent_again(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    who = case["participants"][0]["participantId"]
    async with participant(cut_off(stack.settings), who) as offline:
        tasks = await open_tasks(offline, 3)
        questionnaire = next(
            t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_QUESTIONNAIRE
        )
        sent = await complete(offline, questionnaire)
        assert sent.status_code == 202, sent.text
        assert sent.json()["delivered"] is False
    await make_oversized_and_due(sessions, questionnaire["id"])
    await refused_and_reopened(sessions, questionnaire["id"])

    async with participant(stack.settings, who) as client:
        # The task is the participant's again, with what they sent as the starting point.
        page = await client.get(f"/tasks/{questionnaire['id']}", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "System banku nie mógł przyjąć tego, co ostatnio wysłano" in page.text
        assert 'value="married" checked' in page.text
        again = await complete(client, questionnaire)
        assert again.status_code == 202, again.text
        assert again.json()["delivered"] is True

    rows = await submissions_of(sessions, questionnaire["id"])
    assert [r.state for r in rows] == [SubmissionState.REJECTED, SubmissionState.DELIVERED]
    assert "MALFORMED_REQUEST" in (rows[0].last_error or "")
    assert rows[1].answers == rows[0].answers

    async def completed() -> bool:
        async with sessions() as session:
            task = await session.get(PanelTask, uuid.UUID(questionnaire["id"]))
        return task is not None and task.state == TaskState.COMPLETED

    await eventually(completed, within=30)


async def test_a_refused_signature_is_signed_again_and_both_stay_on_record(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    who_person = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case_via_channel(stack.settings, [who_person])
    who = case["participants"][0]["participantId"]
    async with participant(stack.settings, who) as client:
        sign = await forms_done_until_signing(client)

    async with participant(cut_off(stack.settings), who) as offline:
        first = await sign_task(offline, sign["id"], who_person["phone"], stack.settings.redis_url)
        assert first.status_code == 202, first.text
    await make_oversized_and_due(sessions, sign["id"])
    await refused_and_reopened(sessions, sign["id"])

    async with participant(stack.settings, who) as client:
        # The code of the first signature was used up; a new one signs the same document.
        second = await sign_task(client, sign["id"], who_person["phone"], stack.settings.redis_url)
        assert second.status_code == 202, second.text
        assert second.json()["delivered"] is True

    rows = await submissions_of(sessions, sign["id"])
    assert [r.state for r in rows] == [SubmissionState.REJECTED, SubmissionState.DELIVERED]
    async with sessions() as session:
        signatures = list(
            await session.scalars(
                select(SignatureRecord)
                .where(SignatureRecord.panel_task_id == uuid.UUID(sign["id"]))
                .order_by(SignatureRecord.signed_at)
            )
        )
    assert [s.submission_id for s in signatures] == [rows[0].id, rows[1].id]
    assert all(s.content for s in signatures)
    assert signatures[0].document_sha256 == signatures[1].document_sha256


async def test_a_task_holds_one_active_submission_however_many_were_refused(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two submissions racing for one task: the database keeps one of them."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    who = case["participants"][0]["participantId"]
    async with participant(cut_off(stack.settings), who) as offline:
        tasks = await open_tasks(offline, 3)
        consents = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_CONSENTS)
        answers = VALID_ANSWERS[credit.ELEMENT_TASK_CONSENTS]
        replies = await asyncio.gather(
            *(
                offline.post(
                    f"/api/participant/tasks/{consents['id']}/completion",
                    json={"variables": answers},
                    headers=csrf_headers(offline),
                )
                for _ in range(5)
            )
        )
    assert sorted(r.status_code for r in replies) == [202, 409, 409, 409, 409]
    rows = await submissions_of(sessions, consents["id"])
    assert len(rows) == 1
