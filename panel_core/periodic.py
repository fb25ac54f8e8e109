"""The workers' periodic jobs (reminders, unread answers, the retention purge): one row per
transaction, and a loop that runs them until the workers stop.

Each due row is handled in a transaction of its own that holds its row (the job's query locks
it with ``FOR UPDATE SKIP LOCKED``), so two workers never take one row and a crash leaves a
row's effects whole or not at all. A row whose handling fails is rolled back, logged and left
for the next run; the run goes on with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger("panel.periodic")


class Row(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT", bound=Row)
ResultT = TypeVar("ResultT")
ReportT = TypeVar("ReportT")


@dataclass(frozen=True, slots=True)
class Handled(Generic[ResultT]):
    row_id: uuid.UUID
    # What the log names the row by (a case number, an id).
    name: str
    # None when the handling failed and was rolled back.
    result: ResultT | None
    failed: bool


async def one_at_a_time(
    sessions: async_sessionmaker[AsyncSession],
    next_due: Callable[[AsyncSession, Collection[uuid.UUID]], Awaitable[RowT | None]],
    handle: Callable[[AsyncSession, RowT], Awaitable[ResultT]],
    *,
    what: str,
    name: Callable[[RowT], str] = lambda row: str(row.id),
) -> AsyncGenerator[Handled[ResultT], None]:
    """Every due row, each handled and committed in its own transaction."""
    skipped: set[uuid.UUID] = set()
    while True:
        async with sessions() as session:
            row = await next_due(session, skipped)
            if row is None:
                return
            # Read now: a rollback expires the row.
            row_id, row_name = row.id, name(row)
            try:
                result = await handle(session, row)
                await session.commit()
            except Exception:
                await session.rollback()
                log.exception("%s %s failed; it is tried again next run", what, row_name)
                skipped.add(row_id)
                outcome: Handled[ResultT] = Handled(row_id, row_name, None, True)
            else:
                outcome = Handled(row_id, row_name, result, False)
        yield outcome


async def every(
    stopped: asyncio.Event,
    interval_seconds: float,
    run_once: Callable[[], Awaitable[ReportT]],
    tell: Callable[[ReportT], None],
    *,
    what: str,
) -> None:
    """The workers' loop: a run every ``interval_seconds`` until ``stopped``. A failed run
    (the database away) is logged; the next finds the same rows due."""
    while not stopped.is_set():
        try:
            tell(await run_once())
        except Exception:
            log.exception("%s run failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=interval_seconds)


@dataclass(slots=True)
class Outcomes:
    """What a run of a job that tells people did: told, dropped (nobody to tell, or too
    late), failed (left for the next run)."""

    sent: list[uuid.UUID] = field(default_factory=list)
    dropped: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


async def tell_each(
    sessions: async_sessionmaker[AsyncSession],
    next_due: Callable[[AsyncSession, Collection[uuid.UUID]], Awaitable[RowT | None]],
    tell: Callable[[AsyncSession, RowT], Awaitable[bool]],
    *,
    what: str,
) -> Outcomes:
    """:func:`one_at_a_time` for a job whose handler says whether it told anyone."""
    outcomes = Outcomes()
    async for done in one_at_a_time(sessions, next_due, tell, what=what):
        if done.failed:
            outcomes.failed.append(done.row_id)
        else:
            (outcomes.sent if done.result else outcomes.dropped).append(done.row_id)
    return outcomes


def log_outcomes(logger: logging.Logger, what: str) -> Callable[[Outcomes], None]:
    def tell(outcomes: Outcomes) -> None:
        if outcomes.sent or outcomes.failed or outcomes.dropped:
            logger.info(
                "%s: %d sent, %d dropped, %d failed",
                what,
                len(outcomes.sent),
                len(outcomes.dropped),
                len(outcomes.failed),
            )

    return tell
