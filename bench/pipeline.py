"""The engine side of the pipeline: how soon a participant's task reaches the panel, measured
against the floor the exporter sets, and how many jobs our workers handle against a bare loop.

Run: ``.venv/bin/python -m bench.pipeline`` (``--sustained-seconds 30`` for a shorter
development run; ``--partitions-config 0`` skips the three-partition configuration). Starts
its own real stack as the tests do (tests/conftest.py): Redis, PostgreSQL (migrated), the
Camunda 8.6 engine with the Redis exporter, the case types deployed by ``deploy``, the workers
as a subprocess and the participants' panel (``bff``) under uvicorn, each in its own process.

**P1, task visibility.** Credit cases of one participant each are opened through the channel
API (``POST /api/channel/cases``), 1 at a time (ten times), 50 and 200 at once, and 10 a
second for 60 seconds. Every case's first user task is timed from the engine's record
timestamp (``USER_TASK`` ``CREATED``) to

* the same record's arrival at a bare ``XREAD`` client in a thread of its own: the floor, what
  the exporter's batching and Redis cost (baseline);
* the panel's task row: its ``created_at``, written by the workers' record consumer in the
  transaction that makes it visible.

Both clocks are this machine's. The figure is p95(panel) / p95(floor); p99(panel) is checked
against the 2 s the issue allows. One configuration runs again on an engine with three
partitions; the note names the partitions the tasks came from.

**Exporter floor.** The floor's p95 at 50 cases at once, against the exporter's configured
batch cycle (the exporter writes what it holds once per cycle, so a record waits up to one).

**Worker throughput.** A one-step process (``bench-set-status``: a service task of the
workers' ``customer-panel.case.set-status`` type, setting the status a bench case already
has) is started N times while no worker runs, once for each side: a bare grpc.aio loop
(ActivateJobs for 16, CompleteJob each, again) and then the workers process with its routers
and its default concurrency of 16. Throughput is completions per second from the engine's own
``JOB`` ``COMPLETED`` record timestamps, first to last, so neither side's start-up counts.
The workers' handler does its work (a case read and update in PostgreSQL, a Redis publish);
the bare loop does none, so the ratio charges our worker with its handler as a user would see
it, and a backlog exercises the path that stalled (polling at the job limit).

**Refusals at 200 cases.** The channel API's answers at 200 at once: every case is accepted
(201); a start the engine refused (429, back-pressure) is left to the engine-command outbox,
and the answer carries no process instance yet. The note counts those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import httpx
import redis
from pyzeebe.proto import gateway_pb2 as gw
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub
from sqlalchemy import select

from bench.report import Figure, table, to_json
from bench.servers import settings_env, wait_http
from bff.app import DEMO_CHANNEL_TOKEN
from devtools.camunda import CamundaEngine, ensure_distribution
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from panel_core import constants as c
from panel_core.cli import deploy, migrate
from panel_core.db.models import PanelTask
from panel_core.db.session import create_engine, create_session_factory
from panel_core.identity.pesel import make_pesel
from panel_core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
CASE_TYPE = "credit-application"
ROLE = "primary-borrower"
# A credit case's first step gives its participant three tasks at once (consents, income,
# questionnaire), each a USER_TASK CREATED record.
TASKS_PER_CASE = 3
SINGLE_REPEATS = 10
BURSTS = (50, 200)
SUSTAINED_RATE = 10.0
THROUGHPUT_JOBS = 600
THROUGHPUT_CONCURRENCY = 16
BENCH_PROCESS_ID = "bench-set-status"
P1_TARGET = 1.3
P99_LIMIT_MS = 2000.0
WORKER_TARGET = 0.8
# A task not in the panel by then is counted as missing, not waited for.
SETTLE_SECONDS = 90.0

BENCH_BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="bench-definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{BENCH_PROCESS_ID}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>to-task</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="to-task" sourceRef="start" targetRef="set-status"/>
    <bpmn:serviceTask id="set-status">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="{c.JOB_SET_CASE_STATUS}"/>
        <zeebe:taskHeaders><zeebe:header key="{c.HEADER_STATUS}" value="collecting"/>
        </zeebe:taskHeaders>
      </bpmn:extensionElements>
      <bpmn:incoming>to-task</bpmn:incoming><bpmn:outgoing>to-end</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="to-end" sourceRef="set-status" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>to-end</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


# -- the stack -------------------------------------------------------------------------------


@dataclass
class BenchStack:
    base: Path
    redis: RedisServer
    engine: CamundaEngine
    settings: Settings
    bff_url: str
    workers: subprocess.Popen[bytes] | None = None

    @property
    def workers_log(self) -> Path:
        return self.base / "workers.log"

    def start_workers(self) -> None:
        with self.workers_log.open("ab") as log:
            self.workers = spawn_watched(
                [sys.executable, "-m", "workers.main"],
                cwd=REPO_ROOT,
                env=settings_env(self.settings),
                stdout=log,
            )
        wait_http(
            f"http://127.0.0.1:{self.settings.worker_http_port}/health",
            self.workers,
            self.workers_log,
        )

    def stop_workers(self) -> None:
        if self.workers is not None:
            terminate_watched(self.workers, timeout=20)
            self.workers = None


@contextlib.contextmanager
def started_stack(base: Path, partitions: int) -> Iterator[BenchStack]:
    ensure_distribution()
    with RedisServer() as redis_server, PostgresServer() as postgres:
        engine = CamundaEngine(
            data_dir=base / "camunda-data",
            redis_url=redis_server.url,
            exported_value_types=c.EXPORTED_VALUE_TYPES,
            # Kept, so the benchmark reads the engine's job completions afterwards.
            redis_delete_after_acknowledge=False,
            partitions=partitions,
        )
        engine.start()
        try:
            settings = Settings(
                document_storage_dir=str(base / "documents"),
                database_url=postgres.sqlalchemy_url,
                redis_url=redis_server.url,
                zeebe_address=engine.grpc_address,
                camunda_rest_url=engine.rest_url,
                demo_mode=True,
                secure_cookies=False,
                session_secret=secrets.token_urlsafe(32),
                hash_key="bench-hash-key-0123456789abcdef0123456789",
                worker_http_port=free_port(),
                retention_interval_seconds=0.0,
                login_ip_limit=100_000,
                login_case_limit=10_000,
            )
            migrate(settings.database_url)
            asyncio.run(deploy(settings))
            port = free_port()
            command = [
                sys.executable, "-m", "uvicorn", "--factory", "bff.app:app_factory",
                "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
                "--log-level", "warning",
            ]  # fmt: skip
            bff_log = base / "bff.log"
            with bff_log.open("wb") as out:
                bff = spawn_watched(command, env=settings_env(settings), cwd=REPO_ROOT, stdout=out)
            stack = BenchStack(base, redis_server, engine, settings, f"http://127.0.0.1:{port}")
            try:
                wait_http(f"{stack.bff_url}/health", bff, bff_log)
                stack.start_workers()
                yield stack
            finally:
                stack.stop_workers()
                terminate_watched(bff, timeout=15)
        finally:
            engine.stop()


def _record(fields: Any) -> dict[str, Any]:
    """The record JSON of an exporter stream entry (written under one field)."""
    record: dict[str, Any] = json.loads(fields.get(b"record") or next(iter(fields.values())))
    return record


# -- the floor: a bare reader of the exporter's user-task stream ------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    key: int
    record_ms: int
    received: float
    partition: int


class FloorReader(threading.Thread):
    """Reads ``zeebe:USER_TASK`` with a blocking XREAD, on its own thread and connection, so
    the benchmark's own work does not delay the receipt times."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(name="floor-reader", daemon=True)
        self._redis = redis.Redis.from_url(redis_url)
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._seen: dict[int, Seen] = {}
        self._last = self._redis.xinfo_stream(c.STREAM_USER_TASK)["last-generated-id"]

    def run(self) -> None:
        while not self._stop_event.is_set():
            answer: Any = self._redis.xread({c.STREAM_USER_TASK: self._last}, count=1000, block=100)
            received = time.time()
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    self._last = entry_id
                    record = _record(fields)
                    if record.get("intent") != "CREATED" or record.get("recordType") != "EVENT":
                        continue
                    seen = Seen(
                        int(record["key"]),
                        int(record["timestamp"]),
                        received,
                        int(record.get("partitionId", 0)),
                    )
                    with self._lock:
                        self._seen[seen.key] = seen

    def created_since(self, since: float) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen.values() if s.received >= since]

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        self._redis.close()


# -- opening cases ---------------------------------------------------------------------------


def person(index: int) -> dict[str, str]:
    born = date(1960 + index % 40, 1 + index % 12, 1 + index % 28)
    return {
        "role": ROLE,
        "pesel": make_pesel(born, 1000 + index % 9000),
        "phone": f"+4850{index % 10**7:07d}",
        "locale": "pl",
    }


@dataclass
class Opened:
    statuses: list[int] = field(default_factory=list)
    # Accepted, but the engine did not start the process at once (the outbox will).
    deferred: int = 0
    case_ids: list[str] = field(default_factory=list)


async def open_case(client: httpx.AsyncClient, index: int, opened: Opened) -> None:
    response = await client.post(
        "/api/channel/cases",
        json={"caseType": CASE_TYPE, "participants": [person(index)]},
        headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
    )
    opened.statuses.append(response.status_code)
    if response.status_code == 201:
        body = response.json()
        opened.case_ids.append(body["caseId"])
        if not body.get("processInstanceKey"):
            opened.deferred += 1


# -- measuring -------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


@dataclass
class Sample:
    label: str
    cases: int
    floor_ms: list[float]
    panel_ms: list[float]
    missing: int
    partitions: set[int]
    opened: Opened
    wall_seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "cases": self.cases,
            "tasks": len(self.floor_ms),
            "missing_in_panel": self.missing,
            "partitions": sorted(self.partitions),
            "statuses": {str(s): self.opened.statuses.count(s) for s in set(self.opened.statuses)},
            "deferred_starts": self.opened.deferred,
            "wall_seconds": round(self.wall_seconds, 2),
            **{
                f"{name}_p{q}_ms": round(pct(values, q), 1)
                for name, values in (("floor", self.floor_ms), ("panel", self.panel_ms))
                for q in (50, 95, 99)
            },
        }


class Pipeline:
    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.reader = FloorReader(stack.settings.redis_url)
        self.db = create_engine(stack.settings.database_url)
        self.sessions = create_session_factory(self.db)
        self.client = httpx.AsyncClient(
            base_url=stack.bff_url,
            timeout=60,
            limits=httpx.Limits(max_connections=250, max_keepalive_connections=250),
        )
        self.index = 0
        self.case_ids: list[str] = []

    async def __aenter__(self) -> Pipeline:
        self.reader.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.reader.stop()
        await self.client.aclose()
        await self.db.dispose()

    async def _rows(self, keys: list[int]) -> dict[int, float]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(PanelTask.user_task_key, PanelTask.created_at).where(
                    PanelTask.user_task_key.in_(keys)
                )
            )
            return {key: created.timestamp() for key, created in rows.all()}

    async def _settle(self, since: float, expected: int) -> tuple[list[Seen], dict[int, float]]:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            seen = self.reader.created_since(since)
            rows = await self._rows([s.key for s in seen]) if seen else {}
            if (len(seen) >= expected and len(rows) >= len(seen)) or time.monotonic() > deadline:
                return seen, rows
            await asyncio.sleep(0.5)

    def _sample(
        self,
        label: str,
        cases: int,
        seen: list[Seen],
        rows: dict[int, float],
        opened: Opened,
        wall: float,
    ) -> Sample:
        self.case_ids.extend(opened.case_ids)
        return Sample(
            label,
            cases,
            [(s.received - s.record_ms / 1000) * 1000 for s in seen],
            [(rows[s.key] - s.record_ms / 1000) * 1000 for s in seen if s.key in rows],
            max(cases * TASKS_PER_CASE - len(seen), 0) + sum(1 for s in seen if s.key not in rows),
            {s.partition for s in seen},
            opened,
            wall,
        )

    async def burst(self, cases: int, label: str | None = None) -> Sample:
        opened = Opened()
        since = time.time()
        started = time.monotonic()
        base = self.index
        self.index += cases
        await asyncio.gather(*(open_case(self.client, base + i, opened) for i in range(cases)))
        seen, rows = await self._settle(since, cases * TASKS_PER_CASE)
        return self._sample(
            label or f"{cases} at once", cases, seen, rows, opened, time.monotonic() - started
        )

    async def singles(self, repeats: int) -> Sample:
        samples = [await self.burst(1) for _ in range(repeats)]
        merged = Opened()
        for s in samples:
            merged.statuses += s.opened.statuses
            merged.deferred += s.opened.deferred
        return Sample(
            "1 at once",
            repeats,
            [v for s in samples for v in s.floor_ms],
            [v for s in samples for v in s.panel_ms],
            sum(s.missing for s in samples),
            {p for s in samples for p in s.partitions},
            merged,
            sum(s.wall_seconds for s in samples),
        )

    async def sustained(self, rate: float, seconds: float) -> Sample:
        opened = Opened()
        since = time.time()
        started = time.monotonic()
        total = round(rate * seconds)
        base = self.index
        self.index += total
        pending: list[asyncio.Task[None]] = []
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(open_case(self.client, base + i, opened)))
        await asyncio.gather(*pending)
        seen, rows = await self._settle(since, total * TASKS_PER_CASE)
        return self._sample(
            f"{rate:g}/s for {seconds:g}s", total, seen, rows, opened, time.monotonic() - started
        )


def p1_figure(sample: Sample, suffix: str = "") -> Figure:
    panel95, floor95 = pct(sample.panel_ms, 95), pct(sample.floor_ms, 95)
    panel99 = pct(sample.panel_ms, 99)
    late = "" if panel99 <= P99_LIMIT_MS else f" — p99 over the {P99_LIMIT_MS:.0f} ms allowed"
    return Figure(
        f"P1 at {sample.label}{suffix}",
        "p95 ms",
        panel95,
        floor95,
        "bare XREAD of the same records",
        target=P1_TARGET,
        note=(
            f"p50 {pct(sample.panel_ms, 50):.0f}/{pct(sample.floor_ms, 50):.0f} ms, "
            f"p99 {panel99:.0f}/{pct(sample.floor_ms, 99):.0f} ms (panel/floor){late}; "
            f"{len(sample.panel_ms)} tasks, {sample.missing} missing; "
            f"partitions {sorted(sample.partitions)}; answers "
            f"{ {s: sample.opened.statuses.count(s) for s in set(sample.opened.statuses)} }, "
            f"{sample.opened.deferred} starts left to the outbox"
        ),
    )


# -- worker throughput ------------------------------------------------------------------------


async def deploy_bench_process(stub: Any) -> None:
    await stub.DeployResource(
        gw.DeployResourceRequest(
            resources=[gw.Resource(name="bench-set-status.bpmn", content=BENCH_BPMN.encode())]
        )
    )


async def start_instances(stub: Any, case_id: str, count: int) -> None:
    gate = asyncio.Semaphore(32)
    variables = json.dumps({c.VAR_CASE_ID: case_id})

    async def one() -> None:
        async with gate:
            for attempt in range(50):
                try:
                    await stub.CreateProcessInstance(
                        gw.CreateProcessInstanceRequest(
                            bpmnProcessId=BENCH_PROCESS_ID, version=-1, variables=variables
                        )
                    )
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))

    await asyncio.gather(*(one() for _ in range(count)))


async def bare_loop(stub: Any, count: int) -> None:
    """What a job worker cannot do less than: activate up to 16, complete each, again."""
    done = 0
    while done < count:
        stream = stub.ActivateJobs(
            gw.ActivateJobsRequest(
                type=c.JOB_SET_CASE_STATUS,
                worker="bench-bare-loop",
                timeout=30_000,
                maxJobsToActivate=THROUGHPUT_CONCURRENCY,
                requestTimeout=1000,
                fetchVariable=[c.VAR_CASE_ID],
            )
        )
        keys = [job.key async for response in stream for job in response.jobs]
        await asyncio.gather(*(stub.CompleteJob(gw.CompleteJobRequest(jobKey=k)) for k in keys))
        done += len(keys)


def completions_since(redis_url: str, since_ms: int) -> list[int]:
    """Timestamps of the bench process's job completions exported since ``since_ms``."""
    client = redis.Redis.from_url(redis_url)
    try:
        out = []
        entries: Any = client.xrange(c.STREAM_JOB, min=f"{since_ms}-0")
        for _entry_id, fields in entries:
            record = _record(fields)
            value = record.get("value") or {}
            if (
                record.get("intent") == "COMPLETED"
                and record.get("recordType") == "EVENT"
                and value.get("bpmnProcessId") == BENCH_PROCESS_ID
                and record["timestamp"] >= since_ms
            ):
                out.append(int(record["timestamp"]))
        return out
    finally:
        client.close()


async def wait_completions(redis_url: str, since_ms: int, count: int, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        done = completions_since(redis_url, since_ms)
        if len(done) >= count or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


def rate(timestamps: list[int]) -> float:
    if len(timestamps) < 2:
        return 0.0
    span = (max(timestamps) - min(timestamps)) / 1000
    return (len(timestamps) - 1) / span if span > 0 else math.inf


async def worker_throughput(stack: BenchStack, case_id: str, jobs: int) -> Figure:
    channel = grpc.aio.insecure_channel(stack.engine.grpc_address)
    stub = GatewayStub(channel)
    try:
        await deploy_bench_process(stub)
        stack.stop_workers()
        await start_instances(stub, case_id, jobs)
        since = int(time.time() * 1000)
        await asyncio.wait_for(bare_loop(stub, jobs), timeout=300)
        bare = await wait_completions(stack.settings.redis_url, since, jobs, 30)
        await start_instances(stub, case_id, jobs)
        since = int(time.time() * 1000)
        stack.start_workers()
        ours = await wait_completions(stack.settings.redis_url, since, jobs, 120)
    finally:
        await channel.close()
        if stack.workers is None:
            stack.start_workers()
    gaps = sorted(b - a for a, b in zip(sorted(ours), sorted(ours)[1:], strict=False))
    return Figure(
        "worker throughput",
        "jobs/s",
        rate(ours),
        rate(bare),
        "bare grpc.aio activate/complete loop",
        target=WORKER_TARGET,
        direction="at-least",
        note=(
            f"{len(ours)}/{jobs} and {len(bare)}/{jobs} jobs of {c.JOB_SET_CASE_STATUS} from a "
            f"backlog, concurrency {THROUGHPUT_CONCURRENCY}; longest gap between our "
            f"completions {gaps[-1] if gaps else 0} ms"
        ),
    )


# -- the whole run ---------------------------------------------------------------------------


def exporter_cycle_ms(engine: CamundaEngine) -> float:
    return float(engine.exporter_batch_cycle_millis)


async def measure_pipeline(
    stack: BenchStack, sustained_seconds: float, *, full: bool, suffix: str = ""
) -> tuple[list[Figure], list[dict[str, Any]]]:
    figures: list[Figure] = []
    summaries: list[dict[str, Any]] = []
    async with Pipeline(stack) as pipeline:
        # Warms up the engine, the consumer and the panel; not counted.
        await pipeline.burst(5, "warm-up")
        samples: list[Sample] = []
        if full:
            samples.append(await pipeline.singles(SINGLE_REPEATS))
        for cases in BURSTS:
            samples.append(await pipeline.burst(cases))
            await asyncio.sleep(2)
        if full and sustained_seconds > 0:
            samples.append(await pipeline.sustained(SUSTAINED_RATE, sustained_seconds))
        for sample in samples:
            figures.append(p1_figure(sample, suffix))
            summaries.append({**sample.summary(), "config": suffix or "1 partition"})
        if full:
            fifty = next(s for s in samples if s.cases == 50)
            cycle = exporter_cycle_ms(stack.engine)
            figures.append(
                Figure(
                    "exporter floor at 50 at once",
                    "p95 ms",
                    pct(fifty.floor_ms, 95),
                    cycle,
                    "the exporter's batch cycle",
                    note=f"floor p50 {pct(fifty.floor_ms, 50):.0f} ms; batch cycle {cycle:.0f} ms",
                )
            )
            figures.append(await worker_throughput(stack, pipeline.case_ids[0], THROUGHPUT_JOBS))
    return figures, summaries


def measure(sustained_seconds: float, partitions_config: int) -> tuple[list[Figure], list[Any]]:
    figures: list[Figure] = []
    summaries: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        base = Path(tmp) / "one"
        base.mkdir()
        with started_stack(base, partitions=1) as stack:
            got, summary = asyncio.run(measure_pipeline(stack, sustained_seconds, full=True))
            figures += got
            summaries += summary
        if partitions_config > 1:
            base = Path(tmp) / "many"
            base.mkdir()
            with started_stack(base, partitions=partitions_config) as stack:
                got, summary = asyncio.run(
                    measure_pipeline(
                        stack, 0, full=False, suffix=f", {partitions_config} partitions"
                    )
                )
                figures += got
                summaries += summary
    return figures, summaries


async def run() -> list[Figure]:
    figures, _ = await asyncio.to_thread(measure, 60.0, 3)
    return figures


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--sustained-seconds", type=float, default=60.0)
    parser.add_argument("--partitions-config", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures and samples here")
    args = parser.parse_args()
    figures, summaries = measure(args.sustained_seconds, args.partitions_config)
    print(table(figures))
    for summary in summaries:
        print(json.dumps(summary))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"figures": json.loads(to_json(figures)), "samples": summaries},
                ensure_ascii=False,
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
