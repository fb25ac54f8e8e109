"""The participants' panel under load: P2 (task list), P5 (login code checks), P7 (case overview).

Run: ``.venv/bin/python -m bench.web``. Starts a Redis and a PostgreSQL of its own (migrated
as production is), deploys the credit case type's descriptor into it and fills it by COPY with
cases, their participants and their panel tasks as the record consumer would have stored them
(no engine is needed). The panel (``bff``) runs under uvicorn in its own process, first as one
worker, then as two (``--workers 2`` on one port, sessions in Redis, one shared
``PANEL_SESSION_SECRET``).

Every throughput figure is measured with the same load generator (``httpx.AsyncClient``,
``CONNECTIONS`` concurrent connections, ``SECONDS`` per measurement) against the same server,
and divided by ``GET /health`` on that server measured right before it:

* P2: ``GET /api/participant/tasks`` of ``SESSIONS`` different signed-in participants (signed
  in through the demo-mode sign-in, which opens the same server-side session as the SMS login),
  round-robin, so the session store, the closure check and the task query run for real.
* P5: the second login step (``POST /login/code``) with the right code, each on a fresh login
  attempt: step one (``POST /login/``) is run for every attempt beforehand, untimed, and the
  code read from the SMS the panel queued. A right code is the check people make; wrong ones
  are limited by design (five per code, a lock after ten) and cost less (no session, no
  audit commit). Every attempt comes from its own client address (``X-Forwarded-For`` from
  a trusted proxy, as behind the bank's balancer), so the per-address limits stay in force
  and are not what is measured. The step keeps its deliberate floor
  (``login_min_response_seconds``, 0.35 s), so at most ``CONNECTIONS / 0.35`` checks a second
  can complete whatever the server's speed; P5 therefore runs with ``P5_CONNECTIONS``.
* P7: ``GET /case/`` (the overview page, HTML) p95 over ``P7_REQUESTS`` requests, one at a
  time, of participants of random cases, at 100 cases and at 100 000 cases.

The machine's cores are shared by the load generator and the server; with two workers the
generator competes with both, which caps what a second worker can add here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.report import Figure, table, to_json
from bench.servers import settings_env, wait_http
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from panel_core.cases import case_types
from panel_core.cases.numbers import generate_case_number
from panel_core.cli import migrate
from panel_core.db.models import SmsMessage
from panel_core.db.session import create_engine, create_session_factory
from panel_core.identity.pesel import fragment_hash, make_pesel, pesel_index
from panel_core.identity.phone import phone_index
from panel_core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
CREDIT = REPO_ROOT / "bpmn" / "credit-application"
DESCRIPTOR = CREDIT / "credit-application.case.json"
HASH_KEY = "bench-hash-key-0123456789abcdef0123456789"
CASE_TYPE = PROCESS_ID = "credit-application"
SMALL, LARGE = 100, 100_000
CONNECTIONS = 32
P5_CONNECTIONS = 128
SECONDS = 8.0
WARMUP_SECONDS = 1.5
SESSIONS = 200
P7_REQUESTS = 300
P7_WARMUP = 30
# Enough fresh attempts for the code checks of one server at well above the rate measured.
P5_ATTEMPTS = 1_500
PREPARE_CONCURRENCY = 64
CO_BORROWERS = {0: 50, 1: 35, 2: 15}
STATUSES = {"collecting": 60, "in-review": 25, "approved": 10, "rejected": 5}
# The credit process's participant tasks, in the order a case reaches them.
TASKS = [
    ("task-consents", "Give your consents", "credit-consents"),
    ("task-income", "Provide income details", "credit-income"),
    ("task-questionnaire", "Answer the questionnaire", "credit-questionnaire"),
    ("task-sign", "Sign the application", "credit-signature"),
]
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
_CODE = re.compile(r"(?<![\d-])(\d{6})(?!\d)")

CASE_COLUMNS = [
    "id", "case_number", "case_type", "channel", "status", "descriptor_version", "process_id",
    "process_instance_key", "created_at", "updated_at",
]  # fmt: skip
PARTICIPANT_COLUMNS = [
    "id", "case_id", "role", "ordinal", "phone_e164", "pesel_fragment_hash", "pesel_index",
    "phone_index", "locale", "created_at",
]  # fmt: skip
TASK_COLUMNS = [
    "id", "user_task_key", "process_instance_key", "element_instance_key", "bpmn_process_id",
    "element_id", "name", "case_id", "participant_id", "assignee", "candidate_groups",
    "candidate_users", "form_id", "form_key", "form_schema", "priority", "state", "created_at",
    "engine_position", "engine_attribute_positions",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    participant_id: uuid.UUID
    case_number: str
    fragment: str
    phone: str


@dataclass
class DataSet:
    rng: random.Random
    descriptor_version: int = 1
    forms: dict[str, str] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    cases: int = 0
    tasks: int = 0
    numbers: set[str] = field(default_factory=set)


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pesel(rng: random.Random) -> str:
    return make_pesel(
        date(1950, 1, 1) + timedelta(days=rng.randrange(50 * 365)), rng.randrange(10_000)
    )


def _rows(data: DataSet, count: int) -> tuple[list[tuple[Any, ...]], ...]:
    rng = data.rng
    now = datetime.now(UTC)
    cases: list[tuple[Any, ...]] = []
    participants: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    for _ in range(count):
        case_id = uuid.uuid4()
        created = now - timedelta(seconds=rng.uniform(0, 365 * 86_400))
        number = generate_case_number("KR", now=created)
        while number in data.numbers:
            number = generate_case_number("KR", now=created)
        data.numbers.add(number)
        data.cases += 1
        instance = 2_251_799_813_685_248 + data.cases * 1_000
        status = _pick(rng, STATUSES)
        cases.append(
            (
                case_id, number, CASE_TYPE, "branch", status, data.descriptor_version,
                PROCESS_ID, instance, created, created,
            )
        )  # fmt: skip
        fragments: set[str] = set()
        for ordinal in range(1 + _pick(rng, CO_BORROWERS)):
            participant_id = uuid.uuid4()
            # Two people of one case never share the login fragment (the bank's registration
            # would not tell them apart either).
            while (pesel := _pesel(rng))[-4:] in fragments:
                pass
            fragments.add(pesel[-4:])
            # Unique, so each code is found by the phone it was sent to.
            phone = f"+485{len(data.people):08d}"
            role = "primary-borrower" if ordinal == 0 else "co-borrower"
            participants.append(
                (
                    participant_id, case_id, role, ordinal, phone,
                    fragment_hash(HASH_KEY, case_id, pesel[-4:]), pesel_index(HASH_KEY, pesel),
                    phone_index(HASH_KEY, phone), "pl", created,
                )
            )  # fmt: skip
            data.people.append(Person(participant_id, number, pesel[-4:], phone))
            # A case is somewhere along its tasks: those before done, the current one open.
            reached = rng.randint(1, len(TASKS))
            for index, (element, name, form) in enumerate(TASKS[:reached]):
                data.tasks += 1
                state = "open" if index == reached - 1 and status == "collecting" else "completed"
                tasks.append(
                    (
                        uuid.uuid4(), 4_503_599_627_370_496 + data.tasks, instance,
                        instance + data.tasks % 1_000, PROCESS_ID, element, name, case_id,
                        participant_id, None, "[]", "[]", form, 2_251_799_813_000_000 + index,
                        data.forms[form], 50, state, created + timedelta(hours=index),
                        data.tasks, "{}",
                    )
                )  # fmt: skip
    return cases, participants, tasks


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def fill(engine: AsyncEngine, data: DataSet, count: int) -> float:
    """Add ``count`` cases (participants, tasks) by COPY, then what autovacuum would do."""
    started = time.perf_counter()
    async with driver_connection(engine) as connection:
        # In slices, so the rows of 100 000 cases are never all in memory at once.
        for start in range(0, count, 10_000):
            cases, participants, tasks = _rows(data, min(10_000, count - start))
            await connection.copy_records_to_table("case_file", records=cases, columns=CASE_COLUMNS)
            await connection.copy_records_to_table(
                "participant", records=participants, columns=PARTICIPANT_COLUMNS
            )
            await connection.copy_records_to_table(
                "panel_task", records=tasks, columns=TASK_COLUMNS
            )
        for name in ("case_file", "participant", "panel_task"):
            await connection.execute(f"VACUUM ANALYZE {name}")
    return time.perf_counter() - started


async def deploy(engine: AsyncEngine, data: DataSet) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        _descriptor, data.descriptor_version, _new = await case_types.store(
            session, DESCRIPTOR.read_bytes()
        )
        await session.commit()
    for path in (CREDIT / "forms").glob("*.form"):
        data.forms[path.stem] = json.dumps(json.loads(path.read_text()))


# The panel under uvicorn.


@contextlib.contextmanager
def panel(
    settings: Settings, workers: int, log: Path, profile: Path | None = None
) -> Iterator[str]:
    """The panel under uvicorn; with ``profile``, one worker under cProfile writing there."""
    port = free_port()
    profiler = ["-m", "bench.profiled_uvicorn", str(profile)] if profile else ["-m", "uvicorn"]
    command = [
        sys.executable, *profiler, "--factory", "bff.app:app_factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers", "--log-level", "warning",
        "--workers", str(workers), "--no-access-log",
        # As behind the bank's balancer, which keeps its upstream connections: with uvicorn's
        # 5 s a connection the starved load generator left idle is closed under its feet.
        "--timeout-keep-alive", "120",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = spawn_watched(command, env=settings_env(settings), cwd=REPO_ROOT, stdout=out)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/health", process, log)
        # Every worker up, not just the first to answer.
        time.sleep(2.0 if workers > 1 else 0.0)
        yield base_url
    except Exception:
        print(f"the panel's log:\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        terminate_watched(process, timeout=15)


# The load generator.


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def p(self, percent: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[percent - 1] * 1000


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response | None]]


async def load(
    base_url: str, request: Request, *, connections: int = CONNECTIONS, seconds: float = SECONDS
) -> Load:
    """``connections`` loops sending ``request`` for ``seconds`` after a warm-up; counts what
    completed inside the window. ``request`` returning None means it has nothing left."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        window_start = started + WARMUP_SECONDS
        window_end = window_start + seconds
        exhausted_at: list[float] = []

        async def loop() -> None:
            while (now := time.perf_counter()) < window_end:
                response = await request(client)
                done = time.perf_counter()
                if response is None:
                    exhausted_at.append(done)
                    return
                if now >= window_start and done <= window_end:
                    latencies.append(done - now)

        await asyncio.gather(*(loop() for _ in range(connections)))
        end = min([window_end, *exhausted_at])
    return Load(len(latencies), max(0.001, end - window_start), latencies)


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


async def health(client: httpx.AsyncClient) -> httpx.Response:
    return expect(await client.get("/health"), 200)


async def sign_in(base_url: str, person: Person) -> str:
    """A participant's session cookie, from the demo-mode sign-in."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        page = expect(await client.get("/dev/sign-in"), 200)
        match = _CSRF.search(page.text)
        assert match, page.text[:200]
        expect(
            await client.post(
                "/dev/sign-in",
                data={"participant": str(person.participant_id), "_csrf_token": match.group(1)},
            ),
            303,
        )
        return str(client.cookies["panel-session"])


async def sign_in_many(base_url: str, people: list[Person]) -> list[str]:
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def one(person: Person) -> str:
        async with gate:
            return await sign_in(base_url, person)

    return list(await asyncio.gather(*(one(p) for p in people)))


def round_robin(path: str, cookies: list[str]) -> Request:
    turns = itertools.cycle(cookies)

    async def request(client: httpx.AsyncClient) -> httpx.Response:
        response = await client.get(path, headers={"cookie": f"panel-session={next(turns)}"})
        client.cookies.clear()
        return expect(response, 200)

    return request


async def overview_p95(base_url: str, cookies: list[str]) -> Load:
    """p95 of the overview page, one request at a time (the service time, no queueing)."""
    request = round_robin("/case/", cookies)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for run in range(P7_WARMUP + P7_REQUESTS):
            started = time.perf_counter()
            response = await request(client)
            assert response is not None and "KR-" in response.text
            if run >= P7_WARMUP:
                latencies.append(time.perf_counter() - started)
    return Load(len(latencies), sum(latencies), latencies)


# The login's second step.


@dataclass(frozen=True, slots=True)
class Attempt:
    ip: str
    session: str
    csrf: str
    phone: str


def client_ip(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


async def start_login(base_url: str, person: Person, ip: str) -> Attempt:
    headers = {"x-forwarded-for": ip}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        page = expect(await client.get("/login/"), 200)
        match = _CSRF.search(page.text)
        assert match, page.text[:200]
        sent = await client.post(
            "/login/",
            data={"case": person.case_number, "fragment": person.fragment, "_csrf_token": match[1]},
        )
        expect(sent, 303)
        assert sent.headers["location"].endswith("/login/code"), sent.headers
        return Attempt(
            ip, str(client.cookies["panel-session"]), str(client.cookies["csrftoken"]), person.phone
        )


async def prepare_attempts(
    base_url: str, engine: AsyncEngine, people: list[Person], first_ip: int
) -> list[tuple[Attempt, str]]:
    """Step one for each person (one fresh attempt each) and the code from the queued SMS."""
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def one(index: int, person: Person) -> Attempt:
        async with gate:
            return await start_login(base_url, person, client_ip(first_ip + index))

    attempts = await asyncio.gather(*(one(i, p) for i, p in enumerate(people)))
    sessions = create_session_factory(engine)
    async with sessions() as session:
        rows = await session.execute(
            select(SmsMessage.phone_e164, SmsMessage.body)
            .where(SmsMessage.phone_e164.in_([a.phone for a in attempts]))
            .order_by(SmsMessage.created_at)
        )
        # Each person started one attempt now; an earlier one of theirs was used already.
        codes = {phone: body for phone, body in rows}
    out = []
    for attempt in attempts:
        found = _CODE.search(codes[attempt.phone] or "")
        assert found, codes[attempt.phone]
        out.append((attempt, found[1]))
    return out


def code_checks(pool: list[tuple[Attempt, str]]) -> Request:
    remaining = list(reversed(pool))

    async def request(client: httpx.AsyncClient) -> httpx.Response | None:
        if not remaining:
            return None
        attempt, code = remaining.pop()
        response = await client.post(
            "/login/code",
            data={"code": code, "_csrf_token": attempt.csrf},
            headers={
                "x-forwarded-for": attempt.ip,
                "cookie": f"panel-session={attempt.session}; csrftoken={attempt.csrf}",
            },
        )
        client.cookies.clear()
        expect(response, 303)
        assert response.headers["location"].endswith("/case/"), response.headers
        return response

    return request


# The run.


@dataclass
class Throughput:
    tasks_health: float
    tasks: float
    codes_health: float
    codes: float


async def throughput(
    base_url: str, engine: AsyncEngine, data: DataSet, people: Iterator[Person], first_ip: int
) -> Throughput:
    sample = [next(people) for _ in range(SESSIONS)]
    cookies = await sign_in_many(base_url, sample)
    tasks_health = (await load(base_url, health)).rate
    tasks = (await load(base_url, round_robin("/api/participant/tasks", cookies))).rate
    pool = await prepare_attempts(
        base_url, engine, [next(people) for _ in range(P5_ATTEMPTS)], first_ip
    )
    codes_health = (await load(base_url, health, connections=P5_CONNECTIONS)).rate
    codes = (await load(base_url, code_checks(pool), connections=P5_CONNECTIONS)).rate
    return Throughput(tasks_health, tasks, codes_health, codes)


def settings_for(postgres: PostgresServer, redis: RedisServer, tmp: str) -> Settings:
    return Settings(
        database_url=postgres.sqlalchemy_url,
        redis_url=redis.url,
        document_storage_dir=str(Path(tmp) / "documents"),
        # Nothing here reaches the engine.
        camunda_rest_url="http://127.0.0.1:9",
        zeebe_address="127.0.0.1:9",
        demo_mode=True,
        secure_cookies=False,
        # One secret for every worker: the CSRF token one signs, another checks.
        session_secret=secrets.token_urlsafe(32),
        hash_key=HASH_KEY,
        trusted_proxies="127.0.0.1/32",
        worker_http_port=free_port(),
    )


async def measure(settings: Settings, tmp: str) -> list[Figure]:
    engine = create_engine(settings.database_url)
    data = DataSet(rng=random.Random(20261214))
    try:
        await deploy(engine, data)
        seconds = await fill(engine, data, SMALL)
        print(f"{SMALL} cases loaded ({seconds:.1f}s)")
        with panel(settings, 1, Path(tmp) / "bff-1.log") as base_url:
            first = len(data.people)
            small_people = data.rng.sample(data.people, min(50, first))
            small = await overview_p95(base_url, await sign_in_many(base_url, small_people))
            seconds = await fill(engine, data, LARGE - SMALL)
            print(f"{LARGE} cases loaded ({seconds:.1f}s, {data.tasks} tasks)")
            large_people = data.rng.sample(data.people[first:], 50)
            large = await overview_p95(base_url, await sign_in_many(base_url, large_people))
            # Participants not signed in before, each at most once per run of step one.
            fresh = iter(data.rng.sample(data.people, len(data.people)))
            one = await throughput(base_url, engine, data, fresh, first_ip=1)
        with panel(settings, 2, Path(tmp) / "bff-2.log") as base_url:
            two = await throughput(base_url, engine, data, fresh, first_ip=1 + P5_ATTEMPTS)
        async with engine.connect() as connection:
            size = await connection.scalar(text("SELECT pg_database_size(current_database())"))
    finally:
        await engine.dispose()
    print(f"database at {LARGE} cases: {size / 2**20:.0f} MiB")
    per = f"{CONNECTIONS} connections, {SECONDS:g}s"
    return [
        Figure("P2 task list, 1 worker", "req/s", one.tasks, one.tasks_health,
               "/health on the same server", 0.5, "at-least", per),
        Figure("P2 task list, 2 workers", "req/s", two.tasks, two.tasks_health,
               "/health on the same server", 0.5, "at-least", per),
        Figure("P5 login code checks, 1 worker", "req/s", one.codes, one.codes_health,
               "/health on the same server", None, "at-least",
               f"{P5_CONNECTIONS} connections; right code on a fresh attempt each"),
        Figure("P5 login code checks, 2 workers", "req/s", two.codes, two.codes_health,
               "/health on the same server", None, "at-least",
               f"{P5_CONNECTIONS} connections; right code on a fresh attempt each"),
        Figure("P7 case overview", "p95 ms", large.p(95), small.p(95),
               f"the same page at {SMALL} cases", 1.5, "at-most",
               f"{P7_REQUESTS} requests one at a time; p50 {large.p(50):.1f} vs "
               f"{small.p(50):.1f} ms"),
        Figure("BFF /health, 2 workers vs 1", "req/s", two.tasks_health, one.tasks_health,
               "/health with 1 worker", None, "at-least", per),
        Figure("BFF task list, 2 workers vs 1", "req/s", two.tasks, one.tasks,
               "task list with 1 worker", None, "at-least", per),
    ]  # fmt: skip


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp, RedisServer() as redis_server:
        postgres = PostgresServer()
        postgres.start()
        try:
            # Alembic runs its own event loop.
            await asyncio.to_thread(migrate, postgres.sqlalchemy_url)
            return await measure(settings_for(postgres, redis_server, tmp), tmp)
        finally:
            postgres.stop()


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    figures = asyncio.run(run())
    print()
    print(table(figures))
    print(to_json(figures))


if __name__ == "__main__":
    main()
