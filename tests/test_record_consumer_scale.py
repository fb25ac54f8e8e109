"""The record consumer applies a batch in one transaction, lets one record wait or fail alone,
acknowledges nothing in an outage, and shards across consumers without applying two records
of one process instance out of order.

The records are credit cases as the exporter writes them (devtools/exporter_records.py),
written into the exporter's streams of a Redis database of their own and applied to the
session's PostgreSQL. Which records were applied, and in what order, is read from the real
appliers as they return.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.exporter_records import Engine, Exported, backlog, export
from devtools.ports import free_port
from panel_core import constants as c
from panel_core.db.models import EngineVariable, PanelTask, TaskState
from panel_core.db.session import create_engine, create_session_factory
from panel_core.db.transaction_hooks import on_commit, settle
from panel_core.engine import mirror
from panel_core.engine.mirror import DEAD_LETTER_STREAM, HANDLERS, STREAMS, consumer_group
from panel_core.resilience import is_transient
from tests.conftest import Stack
from workers.engine_records import EngineRecordConsumer

DEPLOYMENTS = (c.STREAM_PROCESS, c.STREAM_FORM)
pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

# Engine keys of each test's cases start here, far from the engine's and the other tests'.
KEY_BASES = iter(range(7_000_000_000_000_000, 7_100_000_000_000_000, 10**12))


@pytest_asyncio.fixture(loop_scope="session")
async def streams(stack: Stack) -> AsyncIterator[Redis]:
    redis = Redis.from_url(stack.redis.url.rsplit("/", 1)[0] + "/6")
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


Applied = list[tuple[str, int, int]]


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> Iterator[Applied]:
    """(stream, instance, position) of every record applied and committed, in order."""
    log: Applied = []
    for stream, handler in list(HANDLERS.items()):

        def wrap(stream: str, handler: mirror.StreamHandler) -> mirror.StreamHandler:
            async def apply(session: AsyncSession, event: Any) -> None:
                await handler.apply(session, event)
                done = (stream, _instance(event), getattr(event, "position", 0))

                async def note() -> None:
                    log.append(done)

                # Only what is committed counts; a rolled-back attempt does not.
                on_commit(session, note)

            return mirror.StreamHandler(handler.read, apply)

        monkeypatch.setitem(HANDLERS, stream, wrap(stream, handler))
    yield log


def _instance(event: Any) -> int:
    for holder in (event, getattr(event, "task", None), getattr(event, "value", None)):
        key = getattr(holder, "process_instance_key", None)
        if isinstance(key, int):
            return key
    return -1


def cases(count: int, *, ends: bool = True) -> tuple[list[Exported], list[Exported]]:
    base = next(KEY_BASES)
    deployed, records = backlog(count, seed=base % 1000, ends=ends)
    # Keys of this test only: shift every key the generator handed out.
    shift = base - Engine().next_key
    text_records = [
        Exported(r.stream, _shift(r.record, shift, base)) for r in (*deployed, *records)
    ]
    return text_records[: len(deployed)], text_records[len(deployed) :]


def _shift(record: dict[str, Any], shift: int, base: int) -> dict[str, Any]:
    def move(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value > 1 << 51:
            return value + shift
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    moved: dict[str, Any] = move(record)
    moved["position"] = record["position"] + base
    return moved


def consumer(
    streams: Redis,
    sessions: async_sessionmaker[AsyncSession],
    group: str,
    *,
    name: str = "one",
    shards: int = 1,
    shard: int = 0,
    batch: int = 100,
) -> EngineRecordConsumer:
    return EngineRecordConsumer(
        streams,
        sessions,
        group=consumer_group(group, shards, shard),
        consumer=name,
        block_ms=20,
        batch=batch,
        defer_limit_seconds=600,
        shards=shards,
        shard=shard,
    )


async def drain(records: EngineRecordConsumer, rounds: int = 200) -> None:
    await records.ensure_groups()
    idle = 0
    for _ in range(rounds):
        idle = 0 if await records.run_once() else idle + 1
        if idle >= 3:
            break
    await settle()


async def pending_count(redis: Redis, group: str) -> int:
    total = 0
    for stream in STREAMS:
        with_group = [g for g in await redis.xinfo_groups(stream) if g["name"].decode() == group]
        total += int(with_group[0]["pending"]) if with_group else 0
    return total


def expected(records: list[Exported]) -> dict[tuple[str, int], int]:
    """How often each (stream, position) is applied: once, unless the panel ignores it."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    for r in records:
        if HANDLERS[r.stream].read(r.encode()) is not None:
            # A deployment's event carries no position.
            out[(r.stream, 0 if r.stream in DEPLOYMENTS else r.position)] += 1
    return dict(out)


def counts(log: Applied) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = defaultdict(int)
    for stream, _instance_key, position in log:
        out[(stream, position)] += 1
    return dict(out)


def assert_in_instance_order(log: Applied) -> None:
    last: dict[int, int] = {}
    for stream, instance, position in log:
        if stream in DEPLOYMENTS:
            continue
        assert position > last.get(instance, -1), f"instance {instance} went back to {position}"
        last[instance] = position


async def tasks_of(
    sessions: async_sessionmaker[AsyncSession], records: list[Exported]
) -> dict[int, PanelTask]:
    keys = {r.record["key"] for r in records if r.stream == c.STREAM_USER_TASK}
    async with sessions() as session:
        rows = await session.scalars(select(PanelTask).where(PanelTask.user_task_key.in_(keys)))
        return {row.user_task_key: row for row in rows}


def last_task_positions(records: list[Exported]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in records:
        if r.stream == c.STREAM_USER_TASK:
            out[r.record["key"]] = r.position
    return out


async def test_a_batch_commits_its_good_records_while_one_waits_and_one_is_set_aside(
    streams: Redis, sessions: async_sessionmaker[AsyncSession], applied: Applied
) -> None:
    deployed, records = cases(3, ends=False)
    # One task names a form no deployment brought: it must wait. One record is unreadable.
    waiting = next(r for r in records if r.stream == c.STREAM_USER_TASK)
    waiting.record["value"]["formKey"] = waiting.record["value"]["formKey"] + 999
    await export(streams, deployed + records)
    broken = await streams.xadd(c.STREAM_VARIABLE, {"record": b"{not json"})

    records_consumer = consumer(streams, sessions, "scale-waits")
    await drain(records_consumer)

    set_aside: list[Any] = [f for _id, f in await streams.xrange(DEAD_LETTER_STREAM) or []]
    assert [(f[b"stream"], f[b"entry"]) for f in set_aside] == [
        (c.STREAM_VARIABLE.encode(), broken)
    ]
    pending = await streams.xpending_range(c.STREAM_USER_TASK, "scale-waits", "-", "+", 10)
    assert len(pending) == 1
    assert await pending_count(streams, "scale-waits") == 1
    rows = await tasks_of(sessions, records)
    wanted = expected(deployed + records)
    assert counts(applied) == {k: v for k, v in wanted.items() if k[1] != waiting.position}
    # Every other task is in the panel, at the position of its newest record.
    positions = last_task_positions(records)
    assert waiting.record["key"] not in rows
    assert {key: row.engine_position for key, row in rows.items()} == {
        key: position for key, position in positions.items() if key != waiting.record["key"]
    }


async def test_an_outage_mid_batch_acknowledges_nothing_and_the_next_round_applies_it_all(
    stack: Stack, streams: Redis, sessions: async_sessionmaker[AsyncSession], applied: Applied
) -> None:
    deployed, records = cases(4, ends=False)
    await export(streams, deployed + records)

    # PostgreSQL refuses the connection: nothing applied, nothing acknowledged.
    closed = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        refused = consumer(streams, create_session_factory(closed), "scale-outage")
        await refused.ensure_groups()
        with pytest.raises(Exception) as refusal:
            await refused.run_once()
        assert is_transient(refusal.value)
    finally:
        await closed.dispose()
    delivered = await pending_count(streams, "scale-outage")
    assert delivered == len(deployed) + len(records)

    # The connection is killed in the middle of the batch.
    killer = create_engine(stack.settings.database_url)
    original = HANDLERS[c.STREAM_VARIABLE]
    calls = 0

    async def kill_on_fifth(session: AsyncSession, event: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
            async with killer.connect() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await original.apply(session, event)

    HANDLERS[c.STREAM_VARIABLE] = mirror.StreamHandler(original.read, kill_on_fifth)
    try:
        killed = consumer(streams, sessions, "scale-outage")
        with pytest.raises(Exception) as raised:
            await killed.run_once()
    finally:
        HANDLERS[c.STREAM_VARIABLE] = original
        await killer.dispose()
    assert is_transient(raised.value)
    await settle()
    assert applied == []
    assert await pending_count(streams, "scale-outage") == delivered
    assert await tasks_of(sessions, records) == {}
    assert not await streams.exists(DEAD_LETTER_STREAM)

    applied.clear()
    await drain(consumer(streams, sessions, "scale-outage"))
    assert counts(applied) == expected(records + deployed)
    assert_in_instance_order(applied)
    assert await pending_count(streams, "scale-outage") == 0
    rows = await tasks_of(sessions, records)
    assert {k: r.engine_position for k, r in rows.items()} == last_task_positions(records)


async def test_two_shards_apply_every_record_once_and_each_instance_in_order(
    streams: Redis, sessions: async_sessionmaker[AsyncSession], applied: Applied
) -> None:
    deployed, records = cases(40, ends=False)
    await export(streams, deployed + records)
    shards = [
        consumer(streams, sessions, "scale-shards", name=f"s{i}", shards=2, shard=i, batch=50)
        for i in range(2)
    ]
    await asyncio.gather(*(drain(shard) for shard in shards))

    instance_records = [r for r in records if r.stream not in DEPLOYMENTS]
    wanted = expected(instance_records)
    got = counts([a for a in applied if a[0] not in DEPLOYMENTS])
    assert got == wanted
    assert_in_instance_order(applied)
    # Both shards did work, each its own instances.
    by_shard = {shard.group: 0 for shard in shards}
    for _stream, instance, _position in applied:
        if instance > 0:
            by_shard[consumer_group("scale-shards", 2, instance % 2)] += 1
    assert all(by_shard.values())
    for shard in shards:
        assert await pending_count(streams, shard.group) == 0
    rows = await tasks_of(sessions, records)
    assert {k: r.engine_position for k, r in rows.items()} == last_task_positions(records)
    # Each variable holds the value of its newest record.
    newest: dict[tuple[int, str], tuple[int, Any]] = {}
    for r in records:
        if r.stream == c.STREAM_VARIABLE:
            value = r.record["value"]
            newest[(value["scopeKey"], value["name"])] = (r.position, json.loads(value["value"]))
    async with sessions() as session:
        variables = await session.execute(
            select(EngineVariable.scope_key, EngineVariable.name, EngineVariable.position).where(
                EngineVariable.scope_key.in_({k for k, _ in newest})
            )
        )
        assert {(s, n): p for s, n, p in variables} == {k: v[0] for k, v in newest.items()}


async def test_user_tasks_come_first_but_never_before_their_own_instances_records(
    streams: Redis, sessions: async_sessionmaker[AsyncSession], applied: Applied
) -> None:
    deployed, records = cases(6, ends=False)
    # One instance whose tasks are not exported yet: only its scopes and variables queue.
    quiet = records[0].instance
    records = [r for r in records if not (r.instance == quiet and r.stream == c.STREAM_USER_TASK)]
    await export(streams, deployed + records)
    await drain(consumer(streams, sessions, "scale-first", batch=500))
    assert counts(applied) == expected(deployed + records)
    assert_in_instance_order(applied)

    # The batch's last task was applied before variables of the quiet instance the exporter
    # wrote earlier than that task.
    last_task = max(i for i, (s, _i, _p) in enumerate(applied) if s == c.STREAM_USER_TASK)
    task_position = applied[last_task][2]
    overtaken = [
        p
        for s, i, p in applied[last_task + 1 :]
        if s == c.STREAM_VARIABLE and i == quiet and p < task_position
    ]
    assert overtaken
    # And every record of its own instance written before it was applied before it.
    own = applied[last_task][1]
    before = {(s, p) for s, i, p in applied[:last_task] if i == own}
    assert {
        (r.stream, r.position)
        for r in records
        if r.instance == own
        and r.position < task_position
        and (r.stream, r.position) in expected(records)
    } <= before


async def test_a_consumer_killed_between_commit_and_acknowledgement_is_resumed_once(
    streams: Redis, sessions: async_sessionmaker[AsyncSession], applied: Applied
) -> None:
    deployed, records = cases(5)
    await export(streams, deployed + records)
    committed = asyncio.Event()

    class KilledBeforeAck(EngineRecordConsumer):
        async def _acknowledge(self, outcome: Any) -> None:
            committed.set()
            await asyncio.Event().wait()

    doomed = KilledBeforeAck(
        streams, sessions, group="scale-killed", consumer="one", block_ms=20, batch=500
    )
    await doomed.ensure_groups()
    round_task = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(committed.wait(), 60)
    round_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_task
    await settle()
    total = len(deployed) + len(records)
    assert await pending_count(streams, "scale-killed") == total
    first = counts(applied)
    assert first == expected(deployed + records)

    applied.clear()
    await drain(consumer(streams, sessions, "scale-killed"))
    assert counts(applied) == expected(deployed + records)
    assert await pending_count(streams, "scale-killed") == 0
    rows = await tasks_of(sessions, records)
    async with sessions() as session:
        per_key = await session.execute(
            select(PanelTask.user_task_key, func.count())
            .where(PanelTask.user_task_key.in_(rows))
            .group_by(PanelTask.user_task_key)
        )
        assert all(n == 1 for _key, n in per_key)
    assert {k: r.engine_position for k, r in rows.items()} == last_task_positions(records)
    assert all(row.state == TaskState.COMPLETED for row in rows.values())
