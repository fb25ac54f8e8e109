"""Fault injection: nothing lost, nothing stuck, nothing done twice, whatever dies mid-run.

A stack of its own (its services are killed and restarted): Redis with AOF, PostgreSQL, the
Camunda engine, the workers and the BFF, each a real process. Every round runs a workload of
50 cases opened concurrently through the channels' API and their participants' tasks
completed concurrently through the BFF over HTTP, as browsers and channels would (retrying
what failed, with the same idempotency key); the analyst's review ends each case through the
engine's REST API. Mid-round one fault is injected. When the stack has settled, a checker in
the style of Jepsen's set test reads the engine's own exported records and the panel's tables
and proves:

* every user task the engine created is in the panel exactly once;
* every completion a participant sent reached the engine exactly once (one COMPLETED record
  per task; no submission refused, none reopened), and every task ended;
* no SMS was asked of the provider twice;
* every case has one process instance, which completed; none is stuck.

The counts of each round are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN
from devtools._process import http_get
from devtools.bureau_stub import BureauStub
from devtools.camunda import CamundaEngine, ensure_distribution
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.reaper import kill_watched, spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from panel_core import constants as c
from panel_core.cli import deploy, migrate
from panel_core.db.models import (
    Case,
    CommandState,
    EngineCommand,
    EngineCommandKind,
    PanelTask,
    Participant,
    SmsMessage,
    SmsState,
    SubmissionState,
    TaskState,
    TaskSubmission,
)
from panel_core.db.session import create_engine, create_session_factory
from panel_core.notifications.sms_providers import DEV_OUTBOX_KEY, DEV_SENT_KEY
from panel_core.settings import Settings
from tests import credit
from tests.conftest import REPO_ROOT, _settings, settings_env
from tests.fault_report import REPORTS
from tests.helpers import PDF_BYTES, VALID_ANSWERS, person

pytestmark = [
    pytest.mark.engine,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="session"),
]

CASES_PER_ROUND = 50
PARTICIPANT_TASKS = {
    credit.ELEMENT_TASK_CONSENTS,
    credit.ELEMENT_TASK_INCOME,
    credit.ELEMENT_TASK_QUESTIONNAIRE,
}
# How long the stack may take to settle after a fault: the outboxes' leases (30 s) plus their
# backoff, and the engine's job timeouts.
SETTLE_SECONDS = 240
CODE = re.compile(r"(?<![\d-])(\d{6})(?!\d)")


class FaultStack:
    """Redis, PostgreSQL, the engine, the workers and the BFF; each can be killed and restarted."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.redis = RedisServer()
        self.postgres = PostgresServer()
        self.bureau = BureauStub(log_path=base / "bureau.log")
        self.engine: CamundaEngine | None = None
        self.bff_port = free_port()
        self.workers: Any = None
        self.bff: Any = None
        self.settings: Settings | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bff_port}"

    @property
    def config(self) -> Settings:
        assert self.settings is not None
        return self.settings

    def start(self) -> None:
        ensure_distribution()
        self.redis.start()
        self.postgres.start()
        self.bureau.start()
        self.engine = CamundaEngine(
            data_dir=self.base / "camunda-data",
            redis_url=self.redis.url,
            exported_value_types=c.EXPORTED_VALUE_TYPES,
            # The checker reads every record the engine exported.
            redis_delete_after_acknowledge=False,
            log_path=self.base / "camunda.log",
        )
        self.engine.start()
        self.settings = msgspec.structs.replace(
            _settings(self.redis, self.postgres, self.engine, self.base / "documents"),
            bureau_url=self.bureau.url,
            worker_http_port=free_port(),
            public_base_url=self.url,
            sms_retry_initial_seconds=0.5,
            sms_retry_max_seconds=2.0,
            command_retry_initial_seconds=0.5,
            command_retry_max_seconds=2.0,
            otp_resend_limit=20,
        )
        migrate(self.settings.database_url)
        asyncio.run(deploy(self.settings))
        self.start_workers()
        self.start_bff()

    def _spawn(self, name: str, argv: list[str]) -> Any:
        with (self.base / f"{name}.log").open("ab") as log:
            return spawn_watched(argv, cwd=REPO_ROOT, env=settings_env(self.config), stdout=log)

    def start_workers(self) -> None:
        self.workers = self._spawn("workers", [sys.executable, "-m", "workers.main"])

    def start_bff(self) -> None:
        self.bff = self._spawn(
            "bff",
            [
                sys.executable, "-m", "uvicorn", "--factory", "bff.app:app_factory",
                "--host", "127.0.0.1", "--port", str(self.bff_port), "--no-proxy-headers",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(f"{self.url}/health", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            assert self.bff.poll() is None, (self.base / "bff.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the BFF did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        for process in (self.bff, self.workers):
            if process is not None:
                terminate_watched(process, timeout=15)
        if self.engine is not None:
            self.engine.stop()
        self.postgres.stop()
        self.redis.stop()
        self.bureau.stop()


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = FaultStack(tmp_path_factory.mktemp("faults"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(faults: FaultStack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(faults.config.database_url)
    yield create_session_factory(engine)
    await engine.dispose()


# -- the workload ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the workload saw; the checker compares it with what the stack recorded."""

    case_ids: list[uuid.UUID] = field(default_factory=list)
    http_retries: int = 0
    completions_sent: int = 0
    resignings: int = 0
    analyst_completions: int = 0


async def patiently(
    tally: Tally, call: Callable[[], Awaitable[httpx.Response]], *, ok: set[int]
) -> httpx.Response:
    """Call until the answer is one of ``ok``: a person pressing the button again while the
    service is down (connection refused, 5xx)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            response = await call()
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code in ok:
            return response
        if response is not None and response.status_code < 500 and response.status_code != 429:
            raise AssertionError(f"unexpected answer {response.status_code}: {response.text}")
        tally.http_retries += 1
        assert time.monotonic() < deadline, "the service did not come back"
        await asyncio.sleep(0.5)


class Person:
    """One participant with a browser of their own."""

    def __init__(self, stack: FaultStack, tally: Tally, participant_id: str, phone: str) -> None:
        self.stack = stack
        self.tally = tally
        self.participant_id = participant_id
        self.phone = phone
        self.client = httpx.AsyncClient(base_url=stack.url, timeout=30)
        # Signing SMS whose codes were tried already.
        self.tried: set[str] = set()

    async def sign_in(self) -> None:
        self.client.cookies.clear()
        page = await patiently(self.tally, lambda: self.client.get("/dev/sign-in"), ok={200})
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token
        await patiently(
            self.tally,
            lambda: self.client.post(
                "/dev/sign-in",
                data={"participant": self.participant_id, "_csrf_token": token.group(1)},
            ),
            ok={303},
        )

    def _csrf(self) -> dict[str, str]:
        return {"x-csrftoken": self.client.cookies.get("csrftoken") or ""}

    async def call(self, method: str, url: str, *, ok: set[int], **kwargs: Any) -> httpx.Response:
        """A participant request; an ended session (Redis restarted, say) means signing in
        again, as a person would."""
        while True:
            response = await patiently(
                self.tally,
                lambda: self.client.request(method, url, headers=self._csrf(), **kwargs),
                ok=ok | {401, 403},
            )
            if response.status_code in ok:
                return response
            self.tally.resignings += 1
            await self.sign_in()

    async def tasks(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (
            await self.call("GET", "/api/participant/tasks", ok={200})
        ).json()
        return listed

    async def wait_for(self, elements: set[str], count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            found = [t for t in await self.tasks() if t["elementId"] in elements]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"tasks {elements} did not appear"
            await asyncio.sleep(0.5)

    async def complete(self, task: dict[str, Any], variables: dict[str, Any]) -> None:
        if task["state"] != "open":
            return
        # 409: stored already (perhaps by the attempt whose answer a fault swallowed).
        await self.call(
            "POST",
            f"/api/participant/tasks/{task['id']}/completion",
            json={"variables": variables},
            ok={202, 409},
        )
        self.tally.completions_sent += 1

    async def sign(self, task: dict[str, Any], redis: Redis) -> None:
        while True:
            document = await self.call(
                "GET", f"/api/participant/tasks/{task['id']}/signing-document", ok={200, 404}
            )
            if document.status_code == 404:
                return  # no longer open: signed already
            sha = document.json()["sha256"]
            await self.call("POST", f"/api/participant/tasks/{task['id']}/signing-code", ok={202})
            code = await self.code_naming(redis, sha[:8])
            answer = await self.call(
                "POST",
                f"/api/participant/tasks/{task['id']}/completion",
                json={
                    "variables": {
                        "signApplication": True,
                        "signingCode": code,
                        "documentSha256": sha,
                    }
                },
                ok={202, 400, 409},
            )
            if answer.status_code in {202, 409}:
                self.tally.completions_sent += 1
                return
            # The code was used by an attempt whose answer a fault swallowed: a new one.

    async def code_naming(self, redis: Redis, fingerprint: str) -> str:
        """The code of the newest signing SMS not tried yet, as the person reads it."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                raw = await redis.lrange(DEV_OUTBOX_KEY, 0, -1)
            except Exception:
                raw = []
            for entry in raw:  # newest first
                message = json.loads(entry)
                if (
                    message["to"] == self.phone
                    and fingerprint in message["text"]
                    and message["id"] not in self.tried
                ):
                    self.tried.add(message["id"])
                    match = CODE.search(message["text"])
                    assert match, message["text"]
                    return match.group(1)
            assert time.monotonic() < deadline, "no signing SMS arrived"
            await asyncio.sleep(0.3)

    async def do_their_share(self, redis: Redis) -> None:
        await self.sign_in()
        tasks = await self.wait_for(PARTICIPANT_TASKS, 3)
        income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
        if income["state"] == "open":
            await self.call(
                "POST",
                f"/api/participant/tasks/{income['id']}/documents",
                files={"incomeProof": ("proof.pdf", PDF_BYTES, "application/pdf")},
                ok={201, 404},
            )
        await asyncio.gather(*(self.complete(t, VALID_ANSWERS[t["elementId"]]) for t in tasks))
        [signing] = await self.wait_for({credit.ELEMENT_TASK_SIGN}, 1)
        await self.sign(signing, redis)
        await self.client.aclose()


async def open_one_case(stack: FaultStack, tally: Tally) -> tuple[str, str, str]:
    who = person(credit.ROLE_PRIMARY_BORROWER, 0)
    key = f"faults-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as channel:
        opened = await patiently(
            tally,
            lambda: channel.post(
                "/api/channel/cases",
                json={
                    "caseType": credit.CASE_TYPE_CREDIT,
                    "participants": [who],
                    "channel": "branch",
                },
                headers={
                    "authorization": f"Bearer {DEMO_CHANNEL_TOKEN}",
                    # A retry after a lost answer gives the same case, never a second one.
                    "idempotency-key": key,
                },
            ),
            ok={201},
        )
    body = opened.json()
    return body["caseId"], body["participants"][0]["participantId"], who["phone"]


async def review(
    stack: FaultStack, db: async_sessionmaker[AsyncSession], tally: Tally, case_id: str
) -> None:
    """The analyst decides, as any task list would, through the engine's REST API."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        async with db() as session:
            key = await session.scalar(
                select(PanelTask.user_task_key).where(
                    PanelTask.case_id == uuid.UUID(case_id),
                    PanelTask.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW,
                )
            )
        if key is not None:
            break
        assert time.monotonic() < deadline, f"case {case_id} never reached the analyst"
        await asyncio.sleep(1.0)
    async with httpx.AsyncClient(timeout=30) as engine:
        await patiently(
            tally,
            lambda: engine.post(
                f"{stack.config.camunda_rest_url}/v2/user-tasks/{key}/completion",
                json={"variables": {credit.VAR_DECISION: credit.DECISION_APPROVED}},
            ),
            # 404: a completion whose answer the restart swallowed got there already.
            ok={204, 404},
        )
    tally.analyst_completions += 1


async def one_case(
    stack: FaultStack, db: async_sessionmaker[AsyncSession], tally: Tally, redis: Redis
) -> None:
    case_id, participant_id, phone = await open_one_case(stack, tally)
    tally.case_ids.append(uuid.UUID(case_id))
    await Person(stack, tally, participant_id, phone).do_their_share(redis)
    await review(stack, db, tally, case_id)


# -- the checker ---------------------------------------------------------------------------


async def records(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Each record the engine exported, once: a restarted broker may export one again."""
    seen: set[tuple[int, int]] = set()
    unique = []
    entries: Any = await redis.xrange(stream)
    for _id, fields in entries:
        record = json.loads(next(iter(fields.values())))
        position = (record.get("partitionId", 1), record["position"])
        if position not in seen:
            seen.add(position)
            unique.append(record)
    return unique


async def exported_to_the_end(
    redis: Redis, db: async_sessionmaker[AsyncSession], tally: Tally
) -> bool:
    """Whether the exporter wrote every case's last record (its process's completion): it
    writes in order, so everything before it is in the streams too."""
    async with db() as session:
        keys = set(
            (
                await session.scalars(
                    select(Case.process_instance_key).where(Case.id.in_(tally.case_ids))
                )
            ).all()
        )
    ended = {
        r["value"]["processInstanceKey"]
        for r in await records(redis, c.STREAM_PROCESS_INSTANCE)
        if r["intent"] == "ELEMENT_COMPLETED" and r["value"]["bpmnElementType"] == "PROCESS"
    }
    return keys <= ended


async def settled(stack: FaultStack, db: async_sessionmaker[AsyncSession], tally: Tally) -> float:
    """Wait until every outbox is empty and the record consumer caught up; how long it took."""
    started = time.monotonic()
    redis = Redis.from_url(stack.config.redis_url)
    try:
        while True:
            async with db() as session:
                waiting = sum(
                    [
                        await session.scalar(
                            select(func.count()).select_from(model).where(model.state == "pending")
                        )
                        or 0
                        for model in (TaskSubmission, SmsMessage, EngineCommand)
                    ]
                )
            lag = 0
            for stream in (c.STREAM_USER_TASK, c.STREAM_PROCESS_INSTANCE, c.STREAM_VARIABLE):
                for group in await redis.xinfo_groups(stream):
                    if group["name"] in (b"customer-panel", "customer-panel"):
                        lag += int(group.get("lag") or 0) + int(group.get("pending") or 0)
            async with db() as session:
                unfinished = await session.scalar(
                    select(func.count())
                    .select_from(Case)
                    .where(Case.id.in_(tally.case_ids), Case.status != credit.STATUS_APPROVED)
                )
            if (
                waiting == 0
                and lag == 0
                and unfinished == 0
                and await exported_to_the_end(redis, db, tally)
            ):
                return time.monotonic() - started
            assert time.monotonic() - started < SETTLE_SECONDS, (
                f"not settled: {waiting} outbox rows, {lag} records behind, "
                f"{unfinished} cases unfinished"
            )
            await asyncio.sleep(1.0)
    finally:
        await redis.aclose()


async def check(
    stack: FaultStack, db: async_sessionmaker[AsyncSession], tally: Tally
) -> dict[str, Any]:
    redis = Redis.from_url(stack.config.redis_url)
    try:
        task_records = await records(redis, c.STREAM_USER_TASK)
        instance_records = await records(redis, c.STREAM_PROCESS_INSTANCE)
        variable_records = await records(redis, c.STREAM_VARIABLE)
        sent = {
            (k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in (await redis.hgetall(DEV_SENT_KEY)).items()
        }
    finally:
        await redis.aclose()
    case_ids = set(tally.case_ids)
    # Which instances carry these cases' ids (a second start's instance too).
    instances_of: dict[uuid.UUID, set[int]] = {}
    for record in variable_records:
        value = record["value"]
        if (
            record["intent"] == "CREATED"
            and value["name"] == c.VAR_CASE_ID
            and value["scopeKey"] == value["processInstanceKey"]
        ):
            case_id = uuid.UUID(json.loads(value["value"]))
            if case_id in case_ids:
                instances_of.setdefault(case_id, set()).add(value["processInstanceKey"])
    all_instances = {key for keys in instances_of.values() for key in keys}
    ended = {
        r["value"]["processInstanceKey"]: r["intent"]
        for r in instance_records
        if r["value"]["bpmnElementType"] == "PROCESS"
        and r["intent"] in {"ELEMENT_COMPLETED", "ELEMENT_TERMINATED"}
    }
    created = {
        r["value"]["userTaskKey"]: r
        for r in task_records
        if r["intent"] == "CREATED" and r["value"]["processInstanceKey"] in all_instances
    }
    completed = Counter(
        r["value"]["userTaskKey"]
        for r in task_records
        if r["intent"] == "COMPLETED" and r["value"]["userTaskKey"] in created
    )
    async with db() as session:
        panel_tasks = (
            await session.scalars(
                select(PanelTask).where(PanelTask.user_task_key.in_(list(created)))
            )
        ).all()
        submissions = (
            await session.scalars(
                select(TaskSubmission).where(TaskSubmission.user_task_key.in_(list(created)))
            )
        ).all()
        messages = (
            await session.scalars(select(SmsMessage).where(SmsMessage.case_id.in_(case_ids)))
        ).all()
        cases = (await session.scalars(select(Case).where(Case.id.in_(case_ids)))).all()
        participants = await session.scalar(
            select(func.count()).select_from(Participant).where(Participant.case_id.in_(case_ids))
        )
        cancels = (
            await session.scalars(
                select(EngineCommand).where(
                    EngineCommand.case_id.in_(case_ids),
                    EngineCommand.kind == EngineCommandKind.CANCEL_INSTANCE,
                )
            )
        ).all()
        starts = (
            await session.scalars(
                select(EngineCommand).where(
                    EngineCommand.case_id.in_(case_ids),
                    EngineCommand.kind == EngineCommandKind.START_PROCESS,
                )
            )
        ).all()

    in_panel = Counter(t.user_task_key for t in panel_tasks)
    bound = {case.id: case.process_instance_key for case in cases}
    live = {case.process_instance_key for case in cases}
    duplicates = all_instances - live
    participant_keys = {
        key
        for key, r in created.items()
        if r["value"]["elementId"] != credit.ELEMENT_TASK_ANALYST_REVIEW
    }
    submitted_keys = {s.user_task_key for s in submissions}
    live_participant_keys = {
        key for key in participant_keys if created[key]["value"]["processInstanceKey"] in live
    }
    live_keys = {key for key, r in created.items() if r["value"]["processInstanceKey"] in live}
    report = {
        "cases": len(cases),
        "participants": participants or 0,
        "user tasks created": len(created),
        "in the panel": sum(in_panel.values()),
        "completions sent (workload)": tally.completions_sent,
        "submissions stored": len(submissions),
        "COMPLETED records": sum(completed.values()),
        "starts retried": sum(1 for s in starts if s.attempts > 1),
        "completions retried": sum(1 for s in submissions if s.attempts > 1),
        "completions answered 'no such task'": sum(
            1 for s in submissions if "NOT_FOUND" in (s.last_error or "")
        ),
        "SMS sent": sum(1 for m in messages if m.state == SmsState.SENT),
        "SMS asked of the provider twice": sum(1 for m in messages if sent.get(str(m.id), 0) > 1),
        "second instances cancelled": len(duplicates),
        "HTTP requests retried (workload)": tally.http_retries,
        "sessions signed into again": tally.resignings,
    }
    # Every user task the engine created is in the panel exactly once.
    assert set(in_panel) == set(created), set(created) - set(in_panel)
    assert set(in_panel.values()) == {1}
    # Every completion sent reached the engine exactly once, and no task was given back.
    assert live_participant_keys <= submitted_keys, live_participant_keys - submitted_keys
    assert all(completed[key] == 1 for key in live_participant_keys), {
        key: completed[key] for key in live_participant_keys if completed[key] != 1
    }
    assert {s.state for s in submissions if s.user_task_key in live_participant_keys} == {
        SubmissionState.DELIVERED
    }
    per_task = Counter(s.user_task_key for s in submissions)
    assert all(per_task[key] == 1 for key in live_participant_keys)
    # The analyst's too: every task of every case's instance was completed, once.
    assert all(completed[key] == 1 for key in live_keys), {
        created[key]["value"]["elementId"]: completed[key]
        for key in live_keys
        if completed[key] != 1
    }
    # No task stuck open or submitted: every case ran to its end.
    assert all(t.state in {TaskState.COMPLETED, TaskState.WITHDRAWN} for t in panel_tasks)
    assert {case.status for case in cases} == {credit.STATUS_APPROVED}
    assert all(ended.get(bound[case_id]) == "ELEMENT_COMPLETED" for case_id in case_ids)
    # A second instance of a case (a start whose answer was lost) was cancelled, and its
    # tasks were nobody's.
    assert all(ended.get(key) == "ELEMENT_TERMINATED" for key in duplicates)
    assert {cancel.process_instance_key for cancel in cancels} >= duplicates
    assert all(
        t.case_id is None
        for t in panel_tasks
        if created[t.user_task_key]["value"]["processInstanceKey"] in duplicates
    )
    # No SMS went out twice: each message asked of the provider once, one invitation each.
    assert report["SMS asked of the provider twice"] == 0
    assert all(m.state == SmsState.SENT for m in messages)
    invitations = Counter(m.participant_id for m in messages if m.purpose == c.SMS_INVITATION)
    assert sorted(invitations.values()) == [1] * int(report["participants"])
    assert {s.state for s in starts} == {CommandState.DONE}
    return report


# -- the rounds ----------------------------------------------------------------------------


async def wait_until_under_way(
    db: async_sessionmaker[AsyncSession], tally: Tally, share: int
) -> None:
    """Until ``share`` completions of this round are stored: the fault lands mid-run."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        if tally.case_ids:
            async with db() as session:
                stored = await session.scalar(
                    select(func.count())
                    .select_from(TaskSubmission)
                    .join(PanelTask, PanelTask.id == TaskSubmission.panel_task_id)
                    .where(PanelTask.case_id.in_(list(tally.case_ids)))
                )
            if (stored or 0) >= share:
                return
        assert time.monotonic() < deadline, "the workload made no progress"
        await asyncio.sleep(0.2)


def kill_workers(stack: FaultStack) -> None:
    kill_watched(stack.workers)
    time.sleep(2)
    stack.start_workers()


def kill_bff(stack: FaultStack) -> None:
    kill_watched(stack.bff)
    time.sleep(1)
    stack.start_bff()


def restart_postgres(stack: FaultStack) -> None:
    stack.postgres.restart()


def restart_redis(stack: FaultStack) -> None:
    stack.redis.restart()


def restart_engine(stack: FaultStack) -> None:
    assert stack.engine is not None
    stack.engine.restart()


FAULTS: dict[str, Callable[[FaultStack], None]] = {
    "kill -9 of the workers": kill_workers,
    "kill -9 of the BFF during completions": kill_bff,
    "PostgreSQL restarted": restart_postgres,
    "Redis restarted (AOF)": restart_redis,
    "engine restarted": restart_engine,
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_nothing_is_lost_stuck_or_doubled_when(
    fault: str, faults: FaultStack, db: async_sessionmaker[AsyncSession]
) -> None:
    tally = Tally()
    redis = Redis.from_url(faults.config.redis_url)
    started = time.monotonic()
    try:
        workload: asyncio.Future[Any] = asyncio.gather(
            *(one_case(faults, db, tally, redis) for _ in range(CASES_PER_ROUND))
        )
        # A third of the way into the form completions, the fault.
        progress: asyncio.Future[Any] = asyncio.ensure_future(
            wait_until_under_way(db, tally, CASES_PER_ROUND)
        )
        await asyncio.wait([progress, workload], return_when=asyncio.FIRST_COMPLETED)
        if workload.done():
            workload.result()
        await progress
        injected = time.monotonic() - started
        await asyncio.to_thread(FAULTS[fault], faults)
        await workload
        settle = await settled(faults, db, tally)
    finally:
        await redis.aclose()
    report = await check(faults, db, tally)
    report["fault injected after (s)"] = round(injected, 1)
    report["round took (s)"] = round(time.monotonic() - started, 1)
    report["settled after the workload in (s)"] = round(settle, 1)
    REPORTS.append((fault, report))
    assert report["cases"] == CASES_PER_ROUND
