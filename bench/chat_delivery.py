"""How long the bank's answer takes to reach a participant's open conversation page.

Run: ``.venv/bin/python -m bench.chat_delivery``. Starts a Redis and a PostgreSQL of its own
(migrated as production is) and the participants' panel (``bff``) under uvicorn in its own
process, pointed at them; no engine is needed, the cases are registered directly. 200 cases
with one participant each (a case holds at most ten), each with a conversation; every
participant signs in through the demo-mode sign-in and keeps its conversation's event stream
open (``/events/?conversation=<id>``), 200 streams at once.

For 30 seconds the bank answers 20 times a second in all, round the conversations, through
``service.post`` with a member of staff and the Redis, in this process as the dashboard does;
each is timed from just before its transaction commits to its event arriving on its
participant's stream. The baseline runs in the same seconds on the same streams: a no-op
event published straight to the conversation's channel (Redis PUBLISH), at the same rate.
The difference is what the answer adds: its commit, the after-commit publish of three
events, and nothing else of the path (Redis, the panel's subscription, the stream) differs.
Prints p50/p95/p99 of both, the p95 ratio, and the figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.report import Figure
from bench.servers import settings_env, wait_http
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from panel_core.cases import case_types
from panel_core.cases.numbers import generate_case_number
from panel_core.cli import migrate
from panel_core.conversations import service
from panel_core.db.models import Case, Participant
from panel_core.db.session import create_engine, create_session_factory
from panel_core.identity.actors import ParticipantActor, StaffActor
from panel_core.identity.pesel import fragment_hash, make_pesel, pesel_index
from panel_core.notifications.live import conversation_channel
from panel_core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = REPO_ROOT / "bpmn" / "credit-application" / "credit-application.case.json"
HASH_KEY = "bench-hash-key-0123456789abcdef0123456789"
STREAMS = 200
RATE = 20.0
SECONDS = 30.0
# Events still on their way when the sending stops.
DRAIN_SECONDS = 5.0
OPEN_BATCH = 20
ANSWER = "Dziękujemy, zaświadczenie dotarło. Sprawdzimy je dziś."
STAFF = StaffActor(
    subject="bench-analyst",
    username="bench.analyst",
    name="Anna Analityk",
    groups=frozenset({"credit-analysts"}),
    roles=frozenset(),
)
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class Stream:
    conversation: uuid.UUID
    client: httpx.AsyncClient
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # When each kind was last sent to this stream and not yet seen arriving.
    pending: dict[str, float] = field(default_factory=dict)


@dataclass
class Figures:
    answers: list[float] = field(default_factory=list)
    noops: list[float] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {"message": 0, "noop": 0})


async def register(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> list[Any]:
    """200 credit cases of one participant each, each with a question to the bank; returns
    (participant id, conversation id) pairs."""
    async with sessions() as session:
        await case_types.store(session, DESCRIPTOR.read_bytes())
        await session.commit()
    pairs = []
    async with sessions() as session:
        for index in range(STREAMS):
            case_id, participant_id = uuid.uuid4(), uuid.uuid4()
            pesel = make_pesel(date(1970 + index % 30, 1 + index % 12, 1 + index % 28), index)
            session.add(
                Case(
                    id=case_id,
                    case_number=generate_case_number("KR"),
                    case_type="credit-application",
                    channel="branch",
                    status="collecting",
                    process_id="credit-application",
                    process_instance_key=2_251_799_813_685_248 + index,
                )
            )
            await session.flush()
            session.add(
                Participant(
                    id=participant_id,
                    case_id=case_id,
                    role="primary-borrower",
                    ordinal=0,
                    phone_e164=f"+4850{secrets.randbelow(10**7):07d}",
                    pesel_fragment_hash=fragment_hash(HASH_KEY, case_id, pesel[-4:]),
                    pesel_index=pesel_index(HASH_KEY, pesel),
                    locale="pl",
                )
            )
            await session.flush()
            conversation = await service.start(
                session,
                ParticipantActor(case_id, participant_id),
                "Jakie zaświadczenie o dochodach mam przesłać?",
                settings=settings,
                now=datetime.now(UTC),
            )
            pairs.append((participant_id, conversation.id))
        await session.commit()
    return pairs


async def sign_in(base_url: str, participant_id: uuid.UUID) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0, read=None))
    page = await client.get("/dev/sign-in")
    match = _CSRF.search(page.text)
    assert page.status_code == 200 and match, page.text[:200]
    done = await client.post(
        "/dev/sign-in", data={"participant": str(participant_id), "_csrf_token": match.group(1)}
    )
    assert done.status_code == 303, done.text[:200]
    return client


async def listen(stream: Stream, figures: Figures) -> None:
    """Read one participant's event stream, timing each kind's first arrival after it was
    sent (an answer reaches the stream twice: by the conversation's channel and by the
    participant's own)."""
    url = f"/events/?conversation={stream.conversation}"
    async with stream.client.stream("GET", url) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            arrived = time.perf_counter()
            kind = json.loads(line[5:]).get("kind")
            if kind == "ready":
                stream.ready.set()
                continue
            sent = stream.pending.pop(kind, None)
            if sent is None:
                continue
            (figures.answers if kind == "message" else figures.noops).append(arrived - sent)


async def answer(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    stream: Stream,
    figures: Figures,
) -> None:
    async with sessions() as session:
        conversation = await service.find(session, STAFF, stream.conversation, lock=True)
        assert conversation is not None
        await service.post(
            session,
            STAFF,
            conversation,
            ANSWER,
            settings=settings,
            now=datetime.now(UTC),
            redis=redis,
        )
        await session.flush()
        stream.pending["message"] = time.perf_counter()
        await session.commit()
    figures.sent["message"] += 1


async def noop(redis: Redis, stream: Stream, figures: Figures) -> None:
    stream.pending["noop"] = time.perf_counter()
    await redis.publish(conversation_channel(stream.conversation), json.dumps({"kind": "noop"}))
    figures.sent["noop"] += 1


async def wait_ready(
    redis: Redis, streams: list[Stream], listeners: list[asyncio.Task[None]]
) -> None:
    """Until every stream is subscribed: a marker on each channel until each has seen one."""
    deadline = time.monotonic() + 60
    while not all(s.ready.is_set() for s in streams):
        for task in listeners:
            if task.done():
                # A stream refused or ended: its error, not a timeout.
                task.result()
                raise RuntimeError("a stream ended before the run")
        if time.monotonic() > deadline:
            raise TimeoutError("not every stream subscribed within a minute")
        for s in streams:
            if not s.ready.is_set():
                await redis.publish(conversation_channel(s.conversation), '{"kind": "ready"}')
        await asyncio.sleep(0.2)


async def drive(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    streams: list[Stream],
    figures: Figures,
) -> None:
    """RATE answers and RATE no-ops a second, interleaved, round the conversations; each
    starts on its own schedule, so a slow one does not hold back the next."""
    period = 1.0 / RATE
    started = time.perf_counter()
    work: set[asyncio.Task[None]] = set()
    tick = 0
    while (at := started + tick * period / 2) < started + SECONDS:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        index = tick // 2
        if tick % 2 == 0:
            job = answer(sessions, redis, settings, streams[index % len(streams)], figures)
        else:
            # Half the streams away from the answer's, so no stream has both at once.
            job = noop(redis, streams[(index + len(streams) // 2) % len(streams)], figures)
        task = asyncio.create_task(job)
        work.add(task)
        task.add_done_callback(work.discard)
        tick += 1
    await asyncio.gather(*work)
    await asyncio.sleep(DRAIN_SECONDS)


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {
        "p50_ms": statistics.median(values) * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


async def run(settings: Settings, base_url: str) -> dict[str, Any]:
    db = create_engine(settings.database_url)
    sessions = create_session_factory(db)
    redis = Redis.from_url(settings.redis_url)
    figures = Figures()
    streams: list[Stream] = []
    listeners: list[asyncio.Task[None]] = []
    try:
        pairs = await register(sessions, settings)
        for participant_id, conversation_id in pairs:
            client = await sign_in(base_url, participant_id)
            streams.append(Stream(conversation_id, client))
        # Opened a batch at a time, as pages open over a few seconds.
        for start in range(0, len(streams), OPEN_BATCH):
            listeners += [
                asyncio.create_task(listen(s, figures)) for s in streams[start : start + OPEN_BATCH]
            ]
            await asyncio.sleep(0.3)
        await wait_ready(redis, streams, listeners)
        print(
            f"{len(streams)} streams open; {RATE:.0f} answers/s and {RATE:.0f} no-ops/s"
            f" for {SECONDS:.0f}s"
        )
        await drive(sessions, redis, settings, streams, figures)
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for s in streams:
            await s.client.aclose()
        await redis.aclose()
        await db.dispose()
    answers, noops = percentiles(figures.answers), percentiles(figures.noops)
    return {
        "streams": len(streams),
        "rate_per_second": RATE,
        "seconds": SECONDS,
        "answers": {
            "sent": figures.sent["message"],
            "received": len(figures.answers),
            **answers,
        },
        "baseline_noop": {"sent": figures.sent["noop"], "received": len(figures.noops), **noops},
        "p95_ratio": answers["p95_ms"] / noops["p95_ms"],
    }


@contextlib.contextmanager
def panel(settings: Settings, port: int, log: Path) -> Iterator[str]:
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "bff.app:app_factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = spawn_watched(command, env=settings_env(settings), cwd=REPO_ROOT, stdout=out)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/health", process, log)
        yield base_url
    except Exception:
        print(f"the panel's log:\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        terminate_watched(process, timeout=15)


def report(result: dict[str, Any]) -> None:
    print(f"\n{'':<28}{'sent':>6}{'got':>6}{'p50':>10}{'p95':>10}{'p99':>10}")
    for name, key in (
        ("answer (service.post)", "answers"),
        ("baseline (PUBLISH no-op)", "baseline_noop"),
    ):
        row = result[key]
        print(
            f"{name:<28}{row['sent']:>6}{row['received']:>6}{row['p50_ms']:>8.2f}ms"
            f"{row['p95_ms']:>8.2f}ms{row['p99_ms']:>8.2f}ms"
        )
    print(f"p95 ratio answer / baseline: {result['p95_ratio']:.2f}x")
    print(json.dumps({"bench": "chat_delivery", **result}))


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp, RedisServer() as redis_server:
        postgres = PostgresServer()
        postgres.start()
        try:
            migrate(postgres.sqlalchemy_url)
            settings = Settings(
                database_url=postgres.sqlalchemy_url,
                redis_url=redis_server.url,
                document_storage_dir=str(Path(tmp) / "documents"),
                # Nothing here reaches the engine.
                camunda_rest_url="http://127.0.0.1:9",
                zeebe_address="127.0.0.1:9",
                demo_mode=True,
                secure_cookies=False,
                session_secret=secrets.token_urlsafe(32),
                hash_key=HASH_KEY,
                worker_http_port=free_port(),
            )
            with panel(settings, free_port(), Path(tmp) / "bff.log") as base_url:
                return asyncio.run(run(settings, base_url))
        finally:
            postgres.stop()


def figures() -> list[Figure]:
    result = measure()
    answers, noops = result["answers"], result["baseline_noop"]
    return [
        Figure(
            f"chat delivery, {result['streams']} streams",
            "p95 ms",
            answers["p95_ms"],
            noops["p95_ms"],
            "a no-op event on the same streams",
            note=(
                f"{result['rate_per_second']:.0f} answers/s for {result['seconds']:.0f}s; "
                f"{answers['received']}/{answers['sent']} answers and "
                f"{noops['received']}/{noops['sent']} no-ops arrived; "
                f"p99 {answers['p99_ms']:.1f} vs {noops['p99_ms']:.1f} ms"
            ),
        )
    ]


def main() -> None:
    # As in the tests: SIGTERM and SIGHUP take Ctrl-C's path, so every finally below runs
    # (and SIGINT does even where a shell started the run with it ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    result = measure()
    report(result)


if __name__ == "__main__":
    main()
