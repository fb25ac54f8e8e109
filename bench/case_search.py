"""Latency of the staff's case search at 1 000 and at 100 000 cases.

Run: ``.venv/bin/python -m bench.case_search``. Starts a PostgreSQL of its own, migrated as
production is, and fills it with synthetic cases (one to three participants each, with
their blind indexes) by COPY. Each typical search runs through ``search_cases`` exactly as
the dashboard calls it (a session from the pool, the page query, the count, the participant
counts); the baseline is the same search at 1 000 cases, measured in the same run, and the
ratio 100k/1k says how it grows with the data. At 100 000 cases it also prints the top lines
of the plans PostgreSQL chose for the statements those searches sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.report import Figure
from devtools.postgres import PostgresServer
from panel_core.cases import case_types
from panel_core.cases.numbers import generate_case_number
from panel_core.cases.search import DAY_ZONE, CaseQuery, CaseSort, search_cases
from panel_core.cli import migrate
from panel_core.db.session import create_engine, create_session_factory
from panel_core.identity.pesel import fragment_hash, make_pesel, pesel_index
from panel_core.identity.phone import phone_index

HASH_KEY = "bench-hash-key-0123456789abcdef0123456789"
SMALL, LARGE = 1_000, 100_000
WARMUP, RUNS = 20, 200
PLAN_LINES = 7
# Cases spread over two years; a realistic mix of statuses and channels.
SPAN_DAYS = 730
STATUSES = {"collecting": 40, "in-review": 20, "approved": 25, "rejected": 15}
CHANNELS = {"branch": 35, "internet-banking": 40, "call-centre": 15, "panel": 8, "cli": 2}
CO_BORROWERS = {0: 50, 1: 35, 2: 15}
# The shipped credit case type, deployed into the benchmark's database as the demo deploys it.
DESCRIPTOR = (
    Path(__file__).resolve().parent.parent
    / "bpmn"
    / "credit-application"
    / "credit-application.case.json"
)
CASE_TYPE, PROCESS_ID = "credit-application", "credit-application"
PRIMARY, CO_BORROWER = "primary-borrower", "co-borrower"

CASE_COLUMNS = [
    "id", "case_number", "case_type", "channel", "status", "process_id",
    "process_instance_key", "created_at", "updated_at",
]  # fmt: skip
PARTICIPANT_COLUMNS = [
    "id", "case_id", "role", "ordinal", "phone_e164", "pesel_fragment_hash", "pesel_index",
    "phone_index", "locale", "created_at",
]  # fmt: skip


@dataclass
class DataSet:
    """What the searches pick their terms from."""

    rng: random.Random
    now: datetime
    numbers: set[str] = field(default_factory=set)
    number_list: list[str] = field(default_factory=list)
    pesels: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    cases: int = 0


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _rows(data: DataSet, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rng = data.rng
    cases: list[tuple[Any, ...]] = []
    participants: list[tuple[Any, ...]] = []
    for _ in range(count):
        case_id = uuid.uuid4()
        created = data.now - timedelta(seconds=rng.uniform(0, SPAN_DAYS * 86_400))
        number = generate_case_number("KR", now=created)
        while number in data.numbers:
            number = generate_case_number("KR", now=created)
        data.numbers.add(number)
        data.number_list.append(number)
        data.cases += 1
        instance = 2_251_799_813_685_248 + data.cases if rng.random() < 0.97 else None
        cases.append(
            (
                case_id, number, CASE_TYPE, _pick(rng, CHANNELS), _pick(rng, STATUSES),
                PROCESS_ID, instance, created, created,
            )
        )  # fmt: skip
        for ordinal in range(1 + _pick(rng, CO_BORROWERS)):
            born = date(1940, 1, 1) + timedelta(days=rng.randrange(65 * 365))
            pesel = make_pesel(born, rng.randrange(10_000))
            phone = f"+4850{rng.randrange(10**7):07d}"
            data.pesels.append(pesel)
            data.phones.append(phone)
            role = PRIMARY if ordinal == 0 else CO_BORROWER
            participants.append(
                (
                    uuid.uuid4(), case_id, role, ordinal, phone,
                    fragment_hash(HASH_KEY, case_id, pesel[-4:]), pesel_index(HASH_KEY, pesel),
                    phone_index(HASH_KEY, phone), "pl", created,
                )
            )  # fmt: skip
    return cases, participants


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """asyncpg's own connection, for COPY and for statements outside a transaction."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def fill(engine: AsyncEngine, data: DataSet, count: int) -> float:
    """Add ``count`` cases by COPY and refresh the planner's statistics; seconds taken."""
    started = time.perf_counter()
    cases, participants = _rows(data, count)
    async with driver_connection(engine) as connection:
        await connection.copy_records_to_table("case_file", records=cases, columns=CASE_COLUMNS)
        await connection.copy_records_to_table(
            "participant", records=participants, columns=PARTICIPANT_COLUMNS
        )
        # What autovacuum does soon after a load: statistics, and the visibility map that
        # lets counts be index-only scans.
        await connection.execute("VACUUM ANALYZE case_file")
        await connection.execute("VACUUM ANALYZE participant")
    return time.perf_counter() - started


def searches(data: DataSet) -> dict[str, Callable[[], CaseQuery]]:
    rng = data.rng
    today = data.now.astimezone(DAY_ZONE).date()
    return {
        "by PESEL": lambda: CaseQuery(customer=rng.choice(data.pesels)),
        "by case number": lambda: CaseQuery(case_number=rng.choice(data.number_list)),
        "status + newest first, page 1": lambda: CaseQuery(statuses=("collecting",)),
        "date range (90 days), page 3": lambda: CaseQuery(
            created_from=today - timedelta(days=120), created_to=today - timedelta(days=31), page=3
        ),
    }


def other_searches(data: DataSet) -> dict[str, Callable[[], CaseQuery]]:
    """Searches whose plans are shown too, though not timed."""
    rng = data.rng
    return {
        "by phone (national spelling)": lambda: CaseQuery(customer=rng.choice(data.phones)[3:]),
        "by case number prefix": lambda: CaseQuery(case_number=rng.choice(data.number_list)[:11]),
        "channel + newest first, page 2": lambda: CaseQuery(channels=("panel",), page=2),
        "type + status, oldest first": lambda: CaseQuery(
            case_types=(CASE_TYPE,), statuses=("rejected",), sort=CaseSort.OLDEST
        ),
    }


async def measure(
    sessions: async_sessionmaker[AsyncSession], make: Callable[[], CaseQuery]
) -> tuple[float, float]:
    """p50 and p95 of one search in milliseconds."""
    timings: list[float] = []
    for run in range(WARMUP + RUNS):
        query = make()
        started = time.perf_counter()
        async with sessions() as session:
            page = await search_cases(session, query, hash_key=HASH_KEY)
        elapsed = time.perf_counter() - started
        assert page.total > 0, query
        if run >= WARMUP:
            timings.append(elapsed * 1000)
    return statistics.median(timings), statistics.quantiles(timings, n=100)[94]


def _plan_line(line: str) -> bool:
    """The plan's nodes and the conditions they apply, not their sort or memory details."""
    if not line.startswith(" "):
        return not line.startswith(("Planning", "Execution"))
    return "->" in line or line.strip().startswith(("Index Cond", "Filter"))


async def explain(engine: AsyncEngine, data: DataSet) -> None:
    """Run each search once, catch the statements it sends, and show their plans' top."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sessions = create_session_factory(engine)
    async with driver_connection(engine) as connection:
        for name, make in {**searches(data), **other_searches(data)}.items():
            event.listen(engine.sync_engine, "before_cursor_execute", record)
            try:
                async with sessions() as session:
                    await search_cases(session, make(), hash_key=HASH_KEY)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", record)
            print(f"\n  {name}:")
            # The page and the total (the participant counts of the page follow); the look-up
            # of the deployed case types that checks a filter's values comes before them.
            of_cases = [(st, pa) for st, pa in sent if "case_type_descriptor" not in st]
            for statement, parameters in of_cases[:2]:
                kind = "count" if "count(" in statement.split("FROM")[0] else "page "
                plan = await connection.fetch(
                    f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", *(parameters or ())
                )
                lines = [row[0] for row in plan if _plan_line(row[0])][:PLAN_LINES]
                print(f"    {kind} {lines[0]}")
                for line in lines[1:]:
                    print(f"          {line}")
            sent.clear()


Timings = dict[int, dict[str, tuple[float, float]]]


async def run(server: PostgresServer) -> Timings:
    data = DataSet(rng=random.Random(20261209), now=datetime.now(UTC))
    engine = create_engine(server.sqlalchemy_url)
    sessions = create_session_factory(engine)
    figures: Timings = {}
    try:
        async with sessions() as session:
            await case_types.store(session, DESCRIPTOR.read_bytes())
            await session.commit()
        for size in (SMALL, LARGE):
            seconds = await fill(engine, data, size - data.cases)
            print(f"{size:>7} cases loaded ({seconds:.1f}s); {WARMUP}+{RUNS} runs of each search")
            figures[size] = {
                name: await measure(sessions, make) for name, make in searches(data).items()
            }
        print(f"\nplans at {LARGE} cases (top lines, EXPLAIN ANALYZE):", end="")
        await explain(engine, data)
    finally:
        await engine.dispose()
    return figures


def report(figures: Timings) -> None:
    print(f"\n{'search':<32}{'1k p50':>9}{'1k p95':>9}{'100k p50':>10}{'100k p95':>10}", end="")
    print(f"{'p50 ratio':>11}{'p95 ratio':>11}")
    for name in figures[SMALL]:
        (small50, small95), (large50, large95) = figures[SMALL][name], figures[LARGE][name]
        print(
            f"{name:<32}{small50:>7.2f}ms{small95:>7.2f}ms{large50:>8.2f}ms{large95:>8.2f}ms"
            f"{large50 / small50:>10.2f}x{large95 / small95:>10.2f}x"
        )


def measure_all() -> Timings:
    server = PostgresServer()
    server.start()
    try:
        migrate(server.sqlalchemy_url)
        return asyncio.run(run(server))
    finally:
        server.stop()


def figures() -> list[Figure]:
    return [
        Figure(
            f"staff search: {name}",
            "p95 ms",
            timings[LARGE][name][1],
            timings[SMALL][name][1],
            f"the same search at {SMALL} cases",
        )
        for timings in [measure_all()]
        for name in timings[SMALL]
    ]


def main() -> None:
    report(measure_all())


if __name__ == "__main__":
    main()
