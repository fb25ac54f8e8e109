"""Opening cases: committed before the engine is asked, started through the outbox whatever
the engine's back-pressure, exactly once per idempotency key and per case."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.db.models import (
    Case,
    CommandState,
    EngineCommand,
    EngineCommandKind,
    PanelTask,
    Participant,
    TaskState,
    utcnow,
)
from tests import credit
from tests.conftest import Stack
from tests.helpers import cut_off, eventually, person
from tests.test_engine_loop import stream_records

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

AUTH = {"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"}


def request_body(people: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "caseType": credit.CASE_TYPE_CREDIT,
        "participants": people or [person(credit.ROLE_PRIMARY_BORROWER, 0)],
        "channel": "branch",
    }


async def test_a_burst_of_openings_gets_every_case_its_number_and_its_process(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """200 at once: the engine pushes back (429) on part of them. Before, those cases were
    refused (503) and status jobs ran before their case was committed; now every case is
    accepted at once and started from the outbox when the engine can take it."""
    async with AsyncTestClient(create_app(stack.settings), timeout=120) as client:
        started = time.monotonic()
        replies = await asyncio.gather(
            *(
                client.post("/api/channel/cases", json=request_body(), headers=AUTH)
                for _ in range(200)
            )
        )
        answered = time.monotonic() - started
    assert [r.status_code for r in replies] == [201] * 200, {r.status_code for r in replies}
    case_ids = [uuid.UUID(r.json()["caseId"]) for r in replies]
    assert len({r.json()["caseNumber"] for r in replies}) == 200

    async def all_running() -> bool:
        async with sessions() as session:
            unstarted = await session.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.id.in_(case_ids), Case.process_instance_key.is_(None))
            )
            uninvited = await session.scalar(
                select(func.count())
                .select_from(Participant)
                .where(Participant.case_id.in_(case_ids), Participant.invited_at.is_(None))
            )
        return unstarted == 0 and uninvited == 0

    await eventually(all_running, within=240, interval=1.0)
    async with sessions() as session:
        commands = (
            await session.execute(
                select(EngineCommand.state, EngineCommand.attempts).where(
                    EngineCommand.case_id.in_(case_ids)
                )
            )
        ).all()
    assert {state for state, _ in commands} == {CommandState.DONE}
    retried = sum(1 for _, attempts in commands if attempts > 1)
    print(f"\n200 cases answered in {answered:.1f}s; {retried} starts needed a retry")


async def test_a_case_opened_while_the_engine_is_unreachable_starts_when_it_is_back(
    stack: Stack,
) -> None:
    """The engine down for the BFF (here: a closed address) is no reason to refuse a case:
    it is accepted, numbered at once, and the workers' outbox starts its process."""
    async with AsyncTestClient(create_app(cut_off(stack.settings))) as offline:
        opened = await offline.post("/api/channel/cases", json=request_body(), headers=AUTH)
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assert body["caseNumber"].startswith("KR-") and body["processInstanceKey"] is None
    async with AsyncTestClient(create_app(stack.settings)) as client:

        async def started() -> dict[str, Any] | None:
            state = await client.get(f"/api/channel/cases/{body['caseId']}", headers=AUTH)
            assert state.status_code == 200, state.text
            found: dict[str, Any] = state.json()
            return found if found["processInstanceKey"] else None

        state = await eventually(started, within=60)
        unknown = await client.get(f"/api/channel/cases/{uuid.uuid4()}", headers=AUTH)
        anonymous = await client.get(f"/api/channel/cases/{body['caseId']}")
    assert state["caseNumber"] == body["caseNumber"]
    assert state["status"] == credit.STATUS_COLLECTING
    assert unknown.status_code == 404
    assert anonymous.status_code == 401


async def test_the_same_idempotency_key_gives_the_same_case(stack: Stack) -> None:
    body = request_body()
    key = {"idempotency-key": f"test-{uuid.uuid4()}"}
    async with AsyncTestClient(create_app(stack.settings)) as client:
        first = await client.post("/api/channel/cases", json=body, headers={**AUTH, **key})
        again = await client.post("/api/channel/cases", json=body, headers={**AUTH, **key})
        other = await client.post(
            "/api/channel/cases", json=request_body(), headers={**AUTH, **key}
        )
        racing_key = {"idempotency-key": f"test-{uuid.uuid4()}"}
        racing = await asyncio.gather(
            *(
                client.post("/api/channel/cases", json=body, headers={**AUTH, **racing_key})
                for _ in range(8)
            )
        )
        no_key = await client.post("/api/channel/cases", json=body, headers=AUTH)
        too_long = await client.post(
            "/api/channel/cases", json=body, headers={**AUTH, "idempotency-key": "x" * 300}
        )
    assert first.status_code == again.status_code == 201
    assert again.json()["caseId"] == first.json()["caseId"]
    assert again.json()["caseNumber"] == first.json()["caseNumber"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert other.status_code == 422
    assert {r.status_code for r in racing} == {201}
    assert len({r.json()["caseId"] for r in racing}) == 1
    # Without a key, the same request is a new case, as before.
    assert no_key.json()["caseId"] != first.json()["caseId"]
    assert too_long.status_code == 400


async def test_a_second_instance_of_one_case_is_cancelled(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A start sent again because its first answer was lost makes a second instance; the
    panel keeps the first, cancels the second, and shows nobody its tasks."""
    async with AsyncTestClient(create_app(stack.settings)) as client:
        opened = await client.post("/api/channel/cases", json=request_body(), headers=AUTH)
        assert opened.status_code == 201
        case_id = opened.json()["caseId"]
        first = int(opened.json()["processInstanceKey"])
    async with sessions() as session:
        await session.execute(
            update(EngineCommand)
            .where(
                EngineCommand.case_id == uuid.UUID(case_id),
                EngineCommand.kind == EngineCommandKind.START_PROCESS,
            )
            .values(state=CommandState.PENDING, process_instance_key=None, next_attempt_at=utcnow())
        )
        await session.commit()

    async def second_instance() -> int | None:
        async with sessions() as session:
            key = await session.scalar(
                select(EngineCommand.process_instance_key).where(
                    EngineCommand.case_id == uuid.UUID(case_id),
                    EngineCommand.kind == EngineCommandKind.START_PROCESS,
                    EngineCommand.state == CommandState.DONE,
                )
            )
        return key if key and key != first else None

    second = await eventually(second_instance, within=60)

    async def terminated() -> bool:
        for record in await stream_records(stack.settings.redis_url, "zeebe:PROCESS_INSTANCE"):
            value = record["value"]
            if (
                record["intent"] == "ELEMENT_TERMINATED"
                and value["bpmnElementType"] == "PROCESS"
                and value["processInstanceKey"] == second
            ):
                return True
        return False

    await eventually(terminated, within=60)
    async with sessions() as session:
        case = await session.get(Case, uuid.UUID(case_id))
        assert case is not None and case.process_instance_key == first
        cancel = await session.scalar(
            select(EngineCommand).where(EngineCommand.idempotency_key == f"cancel:{second}")
        )
        assert cancel is not None and cancel.state == CommandState.DONE
        theirs = (
            await session.scalars(select(PanelTask).where(PanelTask.process_instance_key == second))
        ).all()
    # The second instance's tasks belong to nobody; the case still has its own three.
    assert all(t.case_id is None and t.participant_id is None for t in theirs)

    async def own_tasks() -> list[PanelTask] | None:
        async with sessions() as session:
            tasks = (
                await session.scalars(
                    select(PanelTask).where(
                        PanelTask.case_id == uuid.UUID(case_id), PanelTask.state == TaskState.OPEN
                    )
                )
            ).all()
        return list(tasks) if len(tasks) >= 3 else None

    mine = await eventually(own_tasks, within=60)
    assert len(mine) == 3
    assert {t.process_instance_key for t in mine} == {first}
