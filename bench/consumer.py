"""Record consumer throughput: engine records applied per second from a backlog.

Run: ``.venv/bin/python -m bench.consumer``. Starts a PostgreSQL (migrated as production is)
and a Redis of its own, and fills the exporter's streams with a backlog of credit cases as
the exporter writes them (devtools/exporter_records.py: process instances, scopes and
variables, jobs, participants' and the analyst's user tasks created, assigned, completed;
about 20 000 records). Each measurement starts from the same database (a copy of a
template) and a new consumer group over the same backlog:

* the baseline: a bare XREADGROUP + XACK loop with a no-op handler, in this process;
* ``EngineRecordConsumer`` in this process: records applied per second ÷ the baseline
  (target ≥ 0.5);
* 1, 2 and 4 consumer processes (separate OS processes, each one shard with its own group):
  records per second over the whole backlog (from the first process starting to the last
  one done), and the ratio to 1 process.

``--consumer module:Class`` measures another consumer class in-process (the one before a
change, say); ``--records`` sets the backlog's size. Every process it starts ends with it,
also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text

from bench.report import Figure, table
from devtools.exporter_records import backlog, export
from devtools.postgres import PostgresServer
from devtools.redis_server import RedisServer
from panel_core.cli import migrate
from panel_core.db.session import create_engine, create_session_factory
from panel_core.engine.mirror import STREAMS, consumer_group

RECORDS = 20_000
# Records per case (devtools/exporter_records.CreditCase).
RECORDS_PER_CASE = 48
PROCESSES = (1, 2, 4)
TEMPLATE = "bench_template"
BATCH = 100
TARGET = 0.5
REPO = Path(__file__).resolve().parent.parent


def _url(server: PostgresServer, database: str) -> str:
    return server.sqlalchemy_url.rsplit("/", 1)[0] + f"/{database}"


async def _fresh_database(server: PostgresServer, name: str) -> str:
    admin = create_engine(_url(server, "postgres"))
    try:
        async with admin.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    finally:
        await admin.dispose()
    return _url(server, name)


async def _drained(redis: Redis, group: str) -> bool:
    for stream in STREAMS:
        for info in await redis.xinfo_groups(stream):
            name = info.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != group:
                continue
            if int(info.get("lag") or 0) or int(info.get("pending") or 0):
                return False
    return True


async def bare_loop(redis: Redis, group: str) -> int:
    """What Redis alone allows: read every entry, do nothing with it, acknowledge it."""
    for stream in STREAMS:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    drained = 0
    while True:
        got: Any = await redis.xreadgroup(group, "bare", dict.fromkeys(STREAMS, ">"), count=BATCH)
        pairs: Any = got.items() if isinstance(got, dict) else (got or [])
        async with redis.pipeline(transaction=False) as pipe:
            for stream, entries in pairs:
                if entries:
                    pipe.xack(stream, group, *[entry_id for entry_id, _fields in entries])
                    drained += len(entries)
            if not len(pipe):
                return drained
            await pipe.execute()


def _consumer_class(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


async def consume(
    redis_url: str,
    database_url: str,
    group: str,
    *,
    spec: str = "workers.engine_records:EngineRecordConsumer",
    shards: int = 1,
    shard: int = 0,
) -> tuple[int, float]:
    """Drain the backlog with one consumer; (entries settled, seconds)."""
    consumer_class = _consumer_class(spec)
    engine = create_engine(database_url)
    redis = Redis.from_url(redis_url)
    extra: dict[str, Any] = {"shards": shards, "shard": shard} if shards > 1 else {}
    try:
        consumer = consumer_class(
            redis,
            create_session_factory(engine),
            group=group,
            consumer=f"bench-{shard}",
            block_ms=50,
            batch=BATCH,
            **extra,
        )
        await consumer.ensure_groups()
        started = time.perf_counter()
        settled = 0
        while True:
            done = await consumer.run_once()
            settled += done
            if not done and await _drained(redis, group):
                return settled, time.perf_counter() - started
    finally:
        await redis.aclose()
        await engine.dispose()


@contextlib.asynccontextmanager
async def _processes(commands: Sequence[list[str]]) -> AsyncIterator[list[Any]]:
    procs = [
        await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, cwd=REPO, env={**os.environ}
        )
        for command in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        for proc in procs:
            with contextlib.suppress(Exception):
                await proc.wait()


async def sharded(redis_url: str, database_url: str, processes: int) -> tuple[int, float]:
    """Drain the backlog with one OS process per shard; (entries applied, wall seconds)."""
    base = f"bench-{processes}p"
    commands = [
        [
            sys.executable, "-m", "bench.consumer", "--shard-worker",
            "--redis", redis_url, "--database", database_url,
            "--group", consumer_group(base, processes, shard),
            "--shards", str(processes), "--shard", str(shard),
        ]
        for shard in range(processes)
    ]  # fmt: skip
    redis = Redis.from_url(redis_url)
    try:
        async with _processes(commands) as procs:
            ready = [json.loads((await p.stdout.readline()) or b"{}") for p in procs]
            if not all(r.get("ready") for r in ready):
                raise RuntimeError("a consumer process did not start")
            await redis.rpush("bench:go", *["go"] * processes)
            results = [json.loads((await p.stdout.readline()) or b"{}") for p in procs]
            for proc in procs:
                await proc.wait()
        if any("settled" not in r for r in results):
            raise RuntimeError("a consumer process failed")
        wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
        applied = sum(r["applied"] for r in results)
        return applied, wall
    finally:
        await redis.delete("bench:go")
        await redis.aclose()


async def _shard_worker(args: argparse.Namespace) -> None:
    from panel_core.metrics import ENGINE_RECORDS

    parent = os.getppid()
    redis = Redis.from_url(args.redis)
    try:
        print(json.dumps({"ready": True}), flush=True)
        while not await redis.blpop(["bench:go"], timeout=1):
            if os.getppid() != parent:
                return
        started = time.time()
        before = sum(ENGINE_RECORDS.labels(s)._value.get() for s in STREAMS)
        settled, _seconds = await consume(
            args.redis, args.database, args.group, shards=args.shards, shard=args.shard
        )
        applied = sum(ENGINE_RECORDS.labels(s)._value.get() for s in STREAMS) - before
        print(
            json.dumps(
                {"started": started, "ended": time.time(), "settled": settled, "applied": applied}
            ),
            flush=True,
        )
    finally:
        await redis.aclose()


async def run(
    records: int = RECORDS,
    spec: str = "workers.engine_records:EngineRecordConsumer",
    processes: Sequence[int] = PROCESSES,
) -> list[Figure]:
    cases = max(1, records // RECORDS_PER_CASE)
    deployed, exported = backlog(cases)
    total = len(deployed) + len(exported)
    figures: list[Figure] = []
    with RedisServer(appendonly=False) as redis_server, PostgresServer(TEMPLATE) as postgres:
        await asyncio.to_thread(migrate, postgres.sqlalchemy_url)
        redis = Redis.from_url(redis_server.url)
        try:
            await export(redis, deployed + exported)
            print(f"backlog: {total} records of {cases} credit cases", flush=True)
            started = time.perf_counter()
            drained = await bare_loop(redis, "bench-bare")
            bare_rate = drained / (time.perf_counter() - started)
            print(f"bare XREADGROUP+XACK loop: {drained} entries, {bare_rate:.0f}/s", flush=True)

            database = await _fresh_database(postgres, "bench_in_process")
            settled, seconds = await consume(redis_server.url, database, "bench-inproc", spec=spec)
            rate = settled / seconds
            print(f"{spec}: {settled} entries in {seconds:.1f} s, {rate:.0f}/s", flush=True)
            figures.append(
                Figure(
                    "consumer throughput",
                    "records/s",
                    rate,
                    bare_rate,
                    "bare XREADGROUP+XACK loop, no-op handler",
                    TARGET,
                    "at-least",
                    f"{total} records of {cases} credit cases; one process, batch {BATCH}",
                )
            )
            rates: dict[int, float] = {}
            for count in processes:
                database = await _fresh_database(postgres, f"bench_{count}p")
                applied, wall = await sharded(redis_server.url, database, count)
                rates[count] = total / wall
                print(
                    f"{count} consumer process(es): {total} entries ({applied} applied) in "
                    f"{wall:.1f} s, {rates[count]:.0f}/s",
                    flush=True,
                )
            for count in processes:
                if count == 1 or 1 not in rates:
                    continue
                figures.append(
                    Figure(
                        f"consumer at {count} processes",
                        "records/s",
                        rates[count],
                        rates[1],
                        "1 consumer process",
                        note=f"{count} OS processes, one shard each; {os.cpu_count()} CPUs",
                    )
                )
            if 1 in rates:
                figures.append(
                    Figure(
                        "consumer at 1 process",
                        "records/s",
                        rates[1],
                        bare_rate,
                        "bare XREADGROUP+XACK loop, no-op handler",
                    )
                )
        finally:
            await redis.aclose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consumer", description=__doc__)
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--consumer", default="workers.engine_records:EngineRecordConsumer")
    parser.add_argument("--processes", default=",".join(map(str, PROCESSES)))
    parser.add_argument("--shard-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.shard_worker:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_shard_worker(args))
        return 0
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    print(table(asyncio.run(run(args.records, args.consumer, processes))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
