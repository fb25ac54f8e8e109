"""Drafts: unsent answers are kept on the server and come back on another device."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.db.models import PanelTask, TaskDraft, TaskState
from tests import credit
from tests.conftest import Stack
from tests.helpers import PDF_BYTES, eventually, form_token, open_case_via_channel, person, sign_in

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def _case(stack: Stack) -> dict[str, Any]:
    return await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )


async def _income_task(
    sessions: async_sessionmaker[AsyncSession], participant_id: str
) -> PanelTask:
    async def probe() -> PanelTask | None:
        async with sessions() as session:
            task: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.participant_id == uuid.UUID(participant_id),
                    PanelTask.element_id == credit.ELEMENT_TASK_INCOME,
                )
            )
            return task

    return await eventually(probe, within=60)


async def test_saved_answers_come_back_on_another_device_and_go_when_sent(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await _case(stack)
    me = case["participants"][0]["participantId"]
    task = await _income_task(sessions, me)
    url = f"/tasks/{task.id}"
    async with AsyncTestClient(create_app(stack.settings)) as phone:
        await sign_in(phone, me)
        page = await phone.get(url)
        saved = await phone.post(
            url,
            data={
                "employmentType": "employed",
                "monthlyNetIncome": "lots",  # not valid yet: a draft keeps it as typed
                "employerName": "Example Industries",
                "action": "save",
                "_csrf_token": form_token(page.text),
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303 and saved.headers["location"] == f"{url}?saved=1"
        notice = await phone.get(saved.headers["location"])
        assert "Twoje odpowiedzi są zapisane" in notice.text

    async with AsyncTestClient(create_app(stack.settings)) as laptop:
        await sign_in(laptop, me)
        page = await laptop.get(url)
        assert 'value="lots"' in page.text and 'value="Example Industries"' in page.text
        assert '<option value="employed" selected>' in page.text
        sent = await laptop.post(
            url,
            data={
                "employmentType": "employed",
                "monthlyNetIncome": "9100",
                "employerName": "Example Industries",
                "_csrf_token": form_token(page.text),
            },
            # The requested proof of income goes with the same form.
            files={"incomeProof": ("proof.pdf", PDF_BYTES, "application/pdf")},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
    async with sessions() as session:
        assert await session.get(TaskDraft, task.id) is None
        fresh = await session.get(PanelTask, task.id)
        assert fresh is not None and fresh.state != TaskState.OPEN


async def test_nobody_can_save_a_draft_into_someone_elses_task(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await _case(stack)
    me, other = (p["participantId"] for p in case["participants"])
    foreign = await _income_task(sessions, other)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        page = await client.get("/tasks/")
        response = await client.post(
            f"/tasks/{foreign.id}",
            data={"employerName": "x", "action": "save", "_csrf_token": form_token(page.text)},
            headers={"accept": "text/html"},
        )
    assert response.status_code == 404
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(TaskDraft).where(TaskDraft.panel_task_id == foreign.id)
        )
    assert count == 0
