"""Readiness checks and the gauges read from the shared state, for both processes.

``/ready`` asks each dependency one cheap question; ``/metrics`` refreshes the gauges that
describe shared state (outbox depth, the record streams' lag) from PostgreSQL and Redis
before it is rendered, so every process reports the same truth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client import Gauge
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import Case, EmailMessage, EngineCommand, SmsMessage, TaskSubmission
from panel_core.engine.mirror import DEAD_LETTER_STREAM, STREAMS
from panel_core.engine.rest import CamundaRestClient

OUTBOX_DEPTH: Final = Gauge(
    "panel_outbox_depth", "Rows waiting in each outbox (pending).", ["outbox"]
)
OUTBOX_OLDEST: Final = Gauge(
    "panel_outbox_oldest_pending_seconds",
    "Age of the oldest pending row of each outbox (0 when empty).",
    ["outbox"],
)
OUTBOX_FAILED: Final = Gauge(
    "panel_outbox_failed", "Rows each outbox gave up on (failed or rejected).", ["outbox"]
)
STREAM_LAG: Final = Gauge(
    "panel_engine_records_lag",
    "Records of each stream not yet read by the panel's consumer group.",
    ["stream"],
)
STREAM_PENDING: Final = Gauge(
    "panel_engine_records_pending",
    "Records of each stream read but not yet applied and acknowledged.",
    ["stream"],
)
STREAM_OLDEST: Final = Gauge(
    "panel_engine_records_oldest_pending_seconds",
    "Age of the oldest record of each stream read but not yet acknowledged.",
    ["stream"],
)
# The lag gauges above are those of this process's consumer group: with several record
# consumer shards, each process reports its own shard's group, named here.
CONSUMER_GROUP: Final = Gauge(
    "panel_engine_records_consumer_group",
    "The consumer group whose lag and pending records this process reports (always 1).",
    ["group"],
)
DEAD_LETTER_DEPTH: Final = Gauge(
    "panel_engine_records_dead_letter_depth",
    "Records in the dead-letter stream, waiting for an operator.",
)

RETENTION_DUE: Final = Gauge(
    "panel_retention_cases_due",
    "Closed cases whose purge date has passed and whose data is not purged yet.",
)
RETENTION_OLDEST: Final = Gauge(
    "panel_retention_oldest_due_seconds",
    "How long ago the purge date of the longest-waiting due case passed (0 when none).",
)

_OUTBOXES: Final[dict[str, tuple[Any, tuple[str, ...]]]] = {
    "completion": (TaskSubmission, ("rejected",)),
    "sms": (SmsMessage, ("failed",)),
    "email": (EmailMessage, ("failed",)),
    "engine-command": (EngineCommand, ("failed",)),
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


async def _timed(name: str, probe: Awaitable[Any], limit: float) -> Check:
    try:
        await asyncio.wait_for(probe, limit)
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:300])
    return Check(name, True)


async def _database(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


async def readiness(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    engine: CamundaRestClient,
    limit_seconds: float = 3.0,
) -> list[Check]:
    """Whether the database, Redis and the engine answer, each within the limit."""
    checks = await asyncio.gather(
        _timed("database", _database(sessions), limit_seconds),
        _timed("redis", redis.ping(), limit_seconds),
        _timed("engine", engine.topology(), limit_seconds),
    )
    return list(checks)


async def refresh_outbox_gauges(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], float] = time.time
) -> None:
    async with sessions() as session:
        for name, (model, given_up) in _OUTBOXES.items():
            depth, oldest = (
                await session.execute(
                    select(func.count(), func.min(model.created_at)).where(model.state == "pending")
                )
            ).one()
            failed = await session.scalar(
                select(func.count()).select_from(model).where(model.state.in_(given_up))
            )
            OUTBOX_DEPTH.labels(name).set(depth or 0)
            OUTBOX_OLDEST.labels(name).set(
                max(0.0, now() - oldest.timestamp()) if oldest is not None else 0.0
            )
            OUTBOX_FAILED.labels(name).set(failed or 0)


async def refresh_retention_gauges(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], float] = time.time
) -> None:
    moment = datetime.fromtimestamp(now(), UTC)
    async with sessions() as session:
        due, oldest = (
            await session.execute(
                select(func.count(), func.min(Case.purge_after)).where(
                    Case.purge_after <= moment, Case.purged_at.is_(None)
                )
            )
        ).one()
    RETENTION_DUE.set(due or 0)
    RETENTION_OLDEST.set(max(0.0, now() - oldest.timestamp()) if oldest is not None else 0.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def refresh_stream_gauges(
    redis: Redis, group: str, now: Callable[[], float] = time.time
) -> None:
    for stream in STREAMS:
        lag = pending = 0
        oldest_age = 0.0
        try:
            groups = await redis.xinfo_groups(stream)
        except Exception:
            groups = []
        for info in groups:
            if _text(info.get("name")) == group:
                lag = int(info.get("lag") or 0)
                pending = int(info.get("pending") or 0)
        if pending:
            summary = await redis.xpending(stream, group)
            first = summary.get("min")
            if first:
                oldest_age = max(0.0, now() - int(_text(first).split("-", 1)[0]) / 1000)
        STREAM_LAG.labels(stream).set(lag)
        STREAM_PENDING.labels(stream).set(pending)
        STREAM_OLDEST.labels(stream).set(oldest_age)
    CONSUMER_GROUP.labels(group).set(1)
    DEAD_LETTER_DEPTH.set(int(await redis.xlen(DEAD_LETTER_STREAM)))
