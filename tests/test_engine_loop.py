"""The engine loop end to end: real Camunda engine, workers process, BFF, PostgreSQL, Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core import constants as c
from panel_core.db.models import (
    Case,
    EngineScope,
    EngineVariable,
    PanelTask,
    SubmissionState,
    TaskState,
    TaskSubmission,
)
from panel_core.engine.records import FormValue, ProcessValue, UserTaskValue
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    VALID_ANSWERS,
    complete,
    csrf_headers,
    engine_post,
    eventually,
    open_tasks,
    person,
    sign_in,
    sign_task,
    upload_document,
)
from workers.engine_records import EngineRecordConsumer

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

PARTICIPANT_ELEMENTS = {
    credit.ELEMENT_TASK_CONSENTS,
    credit.ELEMENT_TASK_INCOME,
    credit.ELEMENT_TASK_QUESTIONNAIRE,
}
ClientFactory = Callable[[], AbstractAsyncContextManager[AsyncTestClient[Any]]]


@pytest.fixture
def client_factory(stack: Stack) -> ClientFactory:
    @asynccontextmanager
    async def make() -> AsyncIterator[AsyncTestClient[Any]]:
        # One app per client: each participant has their own cookies and the app's
        # lifespan closes only its own connections.
        async with AsyncTestClient(create_app(stack.settings)) as client:
            yield client

    return make


async def open_case(client: AsyncTestClient[Any], co_borrowers: int) -> dict[str, Any]:
    people = [person(credit.ROLE_PRIMARY_BORROWER, 0)] + [
        person(credit.ROLE_CO_BORROWER, i + 1) for i in range(co_borrowers)
    ]
    response = await client.post(
        "/api/channel/cases",
        json={"caseType": credit.CASE_TYPE_CREDIT, "participants": people, "channel": "branch"},
        headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    # The channel registers the primary borrower first, as the response lists them.
    body["phones"] = [p["phone"] for p in people]
    return body


async def case_tasks(sessions: async_sessionmaker[AsyncSession], case_id: str) -> list[PanelTask]:
    async with sessions() as session:
        result = await session.execute(
            select(PanelTask).where(PanelTask.case_id == uuid.UUID(case_id))
        )
        return list(result.scalars())


async def _open_signing_task(client: AsyncTestClient[Any]) -> list[dict[str, Any]] | None:
    listed = (await client.get("/api/participant/tasks")).json()
    signing = [
        t for t in listed if t["elementId"] == credit.ELEMENT_TASK_SIGN and t["state"] == "open"
    ]
    return signing or None


async def stream_records(redis_url: str, stream: str) -> list[dict[str, Any]]:
    redis = Redis.from_url(redis_url)
    try:
        entries = await redis.xrange(stream)
    finally:
        await redis.aclose()
    return [json.loads(next(iter(fields.values()))) for _entry_id, fields in entries]


async def process_ended(redis_url: str, process_instance_key: int) -> bool:
    """Ask the engine's own record stream whether the process instance completed."""
    for record in await stream_records(redis_url, "zeebe:PROCESS_INSTANCE"):
        value = record["value"]
        if (
            record["intent"] == "ELEMENT_COMPLETED"
            and value["bpmnElementType"] == "PROCESS"
            and value["processInstanceKey"] == process_instance_key
        ):
            return True
    return False


async def test_each_participant_sees_exactly_their_own_tasks(
    client_factory: ClientFactory,
) -> None:
    async with client_factory() as channel:
        case = await open_case(channel, co_borrowers=2)
    assert [p["role"] for p in case["participants"]] == [
        credit.ROLE_PRIMARY_BORROWER,
        credit.ROLE_CO_BORROWER,
        credit.ROLE_CO_BORROWER,
    ]

    seen: dict[str, list[dict[str, Any]]] = {}
    for participant in case["participants"]:
        async with client_factory() as client:
            await sign_in(client, participant["participantId"])
            tasks = await open_tasks(client, 3)
            # Give a late, wrongly routed task the chance to show up before asserting.
            tasks = await open_tasks(client, 3)
            assert len(tasks) == 3
            assert {t["elementId"] for t in tasks} == PARTICIPANT_ELEMENTS
            assert {t["name"] for t in tasks} == {
                "Give your consents",
                "Provide income details",
                "Answer the questionnaire",
            }
            seen[participant["participantId"]] = tasks

    all_ids = [t["id"] for tasks in seen.values() for t in tasks]
    assert len(all_ids) == len(set(all_ids)) == 9

    # A participant cannot read or complete another participant's task: the answer is the
    # same 404 as for a task that does not exist.
    first, second = case["participants"][0], case["participants"][1]
    foreign = seen[second["participantId"]][0]["id"]
    async with client_factory() as client:
        await sign_in(client, first["participantId"])
        missing = await client.get(f"/api/participant/tasks/{uuid.uuid4()}")
        other = await client.get(f"/api/participant/tasks/{foreign}")
        assert other.status_code == missing.status_code == 404
        assert other.content == missing.content
        attempt = await client.post(
            f"/api/participant/tasks/{foreign}/completion",
            json={"variables": VALID_ANSWERS[credit.ELEMENT_TASK_CONSENTS]},
            headers=csrf_headers(client),
        )
        assert attempt.status_code == 404
        page = await client.get(f"/tasks/{foreign}", headers={"accept": "text/html"})
        assert page.status_code == 404
    async with client_factory() as client:
        await sign_in(client, second["participantId"])
        still_open = await open_tasks(client, 3)
        assert foreign in {t["id"] for t in still_open}


async def test_completing_all_tasks_reaches_the_analyst_and_ends_the_process(
    client_factory: ClientFactory,
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with client_factory() as channel:
        case = await open_case(channel, co_borrowers=1)

    for participant, phone in zip(case["participants"], case["phones"], strict=True):
        async with client_factory() as client:
            await sign_in(client, participant["participantId"])
            tasks = await open_tasks(client, 3)
            income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
            # The income task asks for a document: without it the task is refused.
            missing = await complete(client, income)
            assert missing.status_code == 400
            assert set(missing.json()["extra"]["errors"]) == {"incomeProof"}
            uploaded = await upload_document(client, income["id"], "incomeProof")
            assert uploaded.status_code == 201, uploaded.text
            # Invalid answers are refused with the reason per field, and nothing is stored.
            refused = await client.post(
                f"/api/participant/tasks/{income['id']}/completion",
                json={"variables": {"employmentType": "astronaut", "monthlyNetIncome": "-1"}},
                headers=csrf_headers(client),
            )
            assert refused.status_code == 400
            assert set(refused.json()["extra"]["errors"]) == {"employmentType", "monthlyNetIncome"}
            for task in tasks:
                response = await complete(client, task)
                assert response.status_code == 202, response.text
                assert response.json()["delivered"] is True

            # Signing comes once the three tasks are done, and needs a code by SMS.
            (sign,) = await eventually(lambda client=client: _open_signing_task(client), within=60)
            signed = await sign_task(client, sign["id"], phone, stack.settings.redis_url)
            assert signed.status_code == 202, signed.text

            async def all_done(client: AsyncTestClient[Any] = client) -> bool:
                listed = (await client.get("/api/participant/tasks")).json()
                return len(listed) == 4 and all(t["state"] == "completed" for t in listed)

            await eventually(all_done, within=30)

    async def analyst_task() -> PanelTask | None:
        for task in await case_tasks(sessions, case["caseId"]):
            if task.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW:
                return task
        return None

    review = await eventually(analyst_task, within=60)
    assert review.participant_id is None
    assert review.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]
    assert review.form_id == credit.FORM_ANALYST_REVIEW
    async with sessions() as session:
        status = await session.scalar(
            select(Case.status).where(Case.id == uuid.UUID(case["caseId"]))
        )
    assert status == credit.STATUS_IN_REVIEW

    # The analyst completes the review as any Camunda task list would.
    done = await engine_post(
        f"{stack.settings.camunda_rest_url}/v2/user-tasks/{review.user_task_key}/completion",
        {
            "variables": {
                credit.VAR_DECISION: credit.DECISION_APPROVED,
                "decisionReason": "Solvent.",
            }
        },
    )
    assert done.status_code == 204, done.text

    key = int(case["processInstanceKey"])

    async def ended() -> bool:
        return await process_ended(stack.settings.redis_url, key)

    await eventually(ended, within=30)

    async def approved() -> bool:
        async with sessions() as session:
            current = await session.scalar(
                select(Case.status).where(Case.id == uuid.UUID(case["caseId"]))
            )
        return current == credit.STATUS_APPROVED

    await eventually(approved, within=30)
    # The engine no longer knows the instance: cancelling it is refused as not found.
    gone = await engine_post(
        f"{stack.settings.camunda_rest_url}/v2/process-instances/{key}/cancellation",
        {},
    )
    assert gone.status_code == 404

    # The participants' answers stayed in the panel: the only variable their completions gave
    # the process is none at all, while the analyst's decision reached it.
    variables = {
        record["value"]["name"]
        for record in await stream_records(stack.settings.redis_url, "zeebe:VARIABLE")
        if record["value"]["processInstanceKey"] == key
    }
    assert credit.VAR_DECISION in variables
    answered = {key for answers in VALID_ANSWERS.values() for key in answers}
    assert not variables & answered, variables & answered
    async with sessions() as session:
        stored = (
            (
                await session.execute(
                    select(TaskSubmission.answers)
                    .join(PanelTask, PanelTask.id == TaskSubmission.panel_task_id)
                    .where(PanelTask.case_id == uuid.UUID(case["caseId"]))
                )
            )
            .scalars()
            .all()
        )
    assert len(stored) == 8
    assert {"monthlyNetIncome": 8500}.items() <= next(
        a for a in stored if "monthlyNetIncome" in a
    ).items()

    # The panel kept the process's variables for the forms only while it ran.
    async def forgotten() -> bool:
        async with sessions() as session:
            variables = await session.scalar(
                select(func.count())
                .select_from(EngineVariable)
                .where(EngineVariable.process_instance_key == key)
            )
            scopes = (
                await session.execute(
                    select(EngineScope.element_instance_key, EngineScope.ended).where(
                        EngineScope.process_instance_key == key
                    )
                )
            ).all()
        return variables == 0 and [tuple(s) for s in scopes] == [(key, True)]

    await eventually(forgotten, within=30)


async def test_a_record_delivered_twice_makes_one_panel_task(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], client_factory: ClientFactory
) -> None:
    async with client_factory() as channel:
        case = await open_case(channel, co_borrowers=0)
    async with client_factory() as client:
        await sign_in(client, case["participants"][0]["participantId"])
        await open_tasks(client, 3)

    async with sessions() as session:
        before = await session.scalar(select(func.count()).select_from(PanelTask))

    # A second consumer group reads every record the engine exported from the beginning:
    # each user task's CREATED record reaches the panel a second time.
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        replay = EngineRecordConsumer(
            redis, sessions, group=f"replay-{uuid.uuid4()}", consumer="replay", block_ms=100
        )
        await replay.ensure_groups()
        while await replay.run_once():
            pass
        created = [
            entry
            for _id, entry in await redis.xrange(c.STREAM_USER_TASK)
            if json.loads(next(iter(entry.values())))["intent"] == "CREATED"
        ]
    finally:
        await redis.aclose()

    async with sessions() as session:
        after = await session.scalar(select(func.count()).select_from(PanelTask))
        keys = (
            await session.execute(
                select(PanelTask.user_task_key, func.count()).group_by(PanelTask.user_task_key)
            )
        ).all()
    assert created, "the engine exported CREATED records"
    assert after == before
    assert all(count == 1 for _key, count in keys)
    assert len(keys) >= len({json.loads(next(iter(e.values())))["key"] for e in created})


async def test_cancelling_the_process_withdraws_open_tasks(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], client_factory: ClientFactory
) -> None:
    async with client_factory() as channel:
        case = await open_case(channel, co_borrowers=1)
    primary = case["participants"][0]["participantId"]
    async with client_factory() as client:
        await sign_in(client, primary)
        await open_tasks(client, 3)

    async def all_created() -> bool:
        return len(await case_tasks(sessions, case["caseId"])) == 6

    await eventually(all_created, within=60)
    cancelled = await engine_post(
        f"{stack.settings.camunda_rest_url}/v2/process-instances/"
        f"{case['processInstanceKey']}/cancellation",
        {},
    )
    assert cancelled.status_code == 204, cancelled.text

    async def all_withdrawn() -> bool:
        tasks = await case_tasks(sessions, case["caseId"])
        return len(tasks) == 6 and all(t.state == TaskState.WITHDRAWN for t in tasks)

    await eventually(all_withdrawn, within=30)

    async def closed() -> Case | None:
        async with sessions() as session:
            found = await session.get(Case, uuid.UUID(case["caseId"]))
        return found if found is not None and found.closed_at is not None else None

    # Cancelled without a decision: closed under the case type's own afterClosure rule,
    # which still shows the participants the whole case for a while.
    ended = await eventually(closed, within=30)
    assert ended.access_shows == "everything" and ended.access_until is not None
    async with client_factory() as client:
        await sign_in(client, primary)
        page = await client.get("/tasks/", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "Już niepotrzebne" in page.text
        assert "W tej chwili nie masz nic do zrobienia." in page.text


async def test_a_completion_sent_while_the_engine_is_down_reaches_it_after_restart(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], client_factory: ClientFactory
) -> None:
    async with client_factory() as channel:
        case = await open_case(channel, co_borrowers=0)
    async with client_factory() as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
        consents = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_CONSENTS)

        stack.engine.stop()
        try:
            response = await complete(client, consents)
            assert response.status_code == 202, response.text
            assert response.json() == {
                "taskId": consents["id"],
                "state": "submitted",
                "delivered": False,
            }
            async with sessions() as session:
                submission = await session.scalar(
                    select(TaskSubmission).where(
                        TaskSubmission.panel_task_id == uuid.UUID(consents["id"])
                    )
                )
            assert submission is not None
            assert submission.state == SubmissionState.PENDING
            assert submission.answers == {
                "consentCreditCheck": True,
                "consentDataProcessing": True,
            }
            assert submission.variables == {}
            listed = (await client.get("/api/participant/tasks")).json()
            assert {t["id"]: t["state"] for t in listed}[consents["id"]] == "submitted"
        finally:
            stack.engine.start()

        async def delivered() -> bool:
            async with sessions() as session:
                row = await session.scalar(
                    select(TaskSubmission).where(
                        TaskSubmission.panel_task_id == uuid.UUID(consents["id"])
                    )
                )
                task = await session.get(PanelTask, uuid.UUID(consents["id"]))
            return (
                row is not None
                and row.state == SubmissionState.DELIVERED
                and row.attempts >= 2
                and task is not None
                and task.state == TaskState.COMPLETED
            )

        await eventually(delivered, within=90)


@pytest.mark.parametrize(
    ("stream", "struct"),
    [
        (c.STREAM_USER_TASK, UserTaskValue),
        (c.STREAM_FORM, FormValue),
        (c.STREAM_PROCESS, ProcessValue),
    ],
)
async def test_engine_records_carry_every_field_the_panel_reads(
    stack: Stack, client_factory: ClientFactory, stream: str, struct: type[Any]
) -> None:
    """Fails if an engine or exporter upgrade stops sending a field the panel relies on."""
    async with client_factory() as channel:
        await open_case(channel, co_borrowers=0)

    async def records() -> list[dict[str, Any]] | None:
        found = [
            r
            for r in await stream_records(stack.settings.redis_url, stream)
            if r["intent"] == "CREATED"
        ]
        return found or None

    created = await eventually(records, within=30)
    expected = {field.encode_name for field in msgspec.structs.fields(struct)}
    for record in created:
        assert record["recordType"] == "EVENT"
        assert expected <= set(record["value"]), expected - set(record["value"])
