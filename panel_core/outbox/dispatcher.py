"""One dispatcher for every outbox: task completions, SMS, engine commands.

A row is written in the transaction that decided it. Delivering it takes three steps:

1. **claim**: in one short transaction, pick one due row nobody holds (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL) and write a lease on it: an owner token and an expiry. The write
   is a compare-and-set on the lease, so two claimants never both win, on SQLite too;
2. **send**: the external call, with no transaction or row lock held;
3. **settle**: in a new transaction, write the outcome — only if the lease is still ours.

A claimant that dies between 1 and 3 leaves a lease that simply runs out; the row is then
claimed again (at-least-once). Each kind's lease outlasts its external call's timeout, so a
live claimant keeps its row. Rows are claimed one per transaction: no commit ever releases
another row's lock while its call is still under way.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import utcnow
from panel_core.metrics import observe_outbox
from panel_core.observability import log_context
from panel_core.resilience import backoff_delay, is_transient, jittered, sleep_unless

log = logging.getLogger(__name__)

Row = TypeVar("Row")
Outcome = TypeVar("Outcome")

PENDING = "pending"


AfterCommit = Callable[[], Awaitable[None]] | None


def lease_for(call_timeout_seconds: float) -> float:
    """A lease longer than any single external call can take, so a live claimant keeps its
    row; short enough that a dead claimant's row is soon taken again."""
    return max(30.0, 3 * call_timeout_seconds)


@dataclass(frozen=True, slots=True)
class Claim(Generic[Row]):
    row: Row
    owner: str


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease written with a new row, in the transaction that creates it: the writer
    delivers the row right after its commit, and no dispatcher takes it first."""

    owner: str
    until: datetime

    def columns(self) -> dict[str, Any]:
        return {"lease_owner": self.owner, "leased_until": self.until}


class OutboxKind(abc.ABC, Generic[Row, Outcome]):
    """What one outbox sends and how its outcomes are written back."""

    #: Short name, used in logs and metrics ("completion", "sms", "engine-command").
    name: ClassVar[str]
    #: The mapped class; it has ``id``, ``state`` and the columns of ``OutboxColumns``.
    model: ClassVar[type[Any]]

    def __init__(
        self,
        *,
        lease_seconds: float,
        retry_initial_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self.lease_seconds = lease_seconds
        self.retry_initial_seconds = retry_initial_seconds
        self.retry_max_seconds = retry_max_seconds

    def retry_later(self, row: Any, detail: str) -> None:
        """Settle an attempt that may succeed later: due again after a jittered backoff."""
        delay = backoff_delay(row.attempts, self.retry_initial_seconds, self.retry_max_seconds)
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.info(
            "%s %s deferred (attempt %s, next in %.1f s): %s",
            self.name,
            row.id,
            row.attempts,
            delay,
            detail,
        )

    @abc.abstractmethod
    async def send(self, row: Row) -> Outcome:
        """Make the external call for this row. Runs outside any transaction."""

    @abc.abstractmethod
    def outcome_of_error(self, row: Row, error: BaseException) -> Outcome:
        """The outcome when ``send`` raised: an unexpected error is a delivery to retry."""

    @abc.abstractmethod
    async def settle(self, session: AsyncSession, row: Row, outcome: Outcome) -> AfterCommit:
        """Write the outcome into the locked row (and whatever else it changes).

        May return what to do once that is committed (a live update, say): best effort,
        never undoing the outcome.
        """

    def label(self, outcome: Outcome) -> str:
        """How the outcome is counted in metrics."""
        value = getattr(outcome, "outcome", outcome)
        return str(getattr(value, "value", value))


class Outbox(Generic[Row, Outcome]):
    """Claims, sends and settles the rows of one outbox kind."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        kind: OutboxKind[Row, Outcome],
        *,
        concurrency: int = 1,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.kind = kind
        self._concurrency = max(1, concurrency)
        self._clock = clock

    def _claimable(self, now: datetime) -> list[Any]:
        model = self.kind.model
        return [
            model.state == PENDING,
            model.next_attempt_at <= now,
            or_(model.leased_until.is_(None), model.leased_until <= now),
        ]

    async def claim(self, row_id: uuid.UUID | None = None) -> Claim[Row] | None:
        """Lease one due row (this one, if given); None when there is none to take."""
        model = self.kind.model
        async with self._sessions() as session:
            for _ in range(5):
                now = self._clock()
                candidates = select(model.id).where(*self._claimable(now))
                if row_id is not None:
                    candidates = candidates.where(model.id == row_id)
                candidate = await session.scalar(
                    candidates.order_by(model.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if candidate is None:
                    return None
                owner = secrets.token_hex(8)
                leased = (
                    await session.scalars(
                        update(model)
                        .where(model.id == candidate, *self._claimable(now))
                        .values(
                            leased_until=now + timedelta(seconds=self.kind.lease_seconds),
                            lease_owner=owner,
                        )
                        .returning(model),
                        execution_options={"synchronize_session": False},
                    )
                ).one_or_none()
                await session.commit()
                if leased is not None:
                    return Claim(leased, owner)
                # Another claimant took it between our read and our write (SQLite has no
                # SKIP LOCKED): take the next one.
        return None

    async def process(self, claim: Claim[Row]) -> Outcome:
        """Send a claimed row and write its outcome."""
        row: Any = claim.row
        with log_context(
            request_id=getattr(row, "request_id", None), case_id=getattr(row, "case_id", None)
        ):
            return await self._process(claim)

    async def _process(self, claim: Claim[Row]) -> Outcome:
        try:
            outcome = await self.kind.send(claim.row)
        except Exception as error:
            log.warning(
                "%s %s: send failed: %s", self.kind.name, _row_id(claim.row), error, exc_info=True
            )
            outcome = self.kind.outcome_of_error(claim.row, error)
        observe_outbox(self.kind.name, self.kind.label(outcome))
        await self._settle(claim, outcome)
        return outcome

    async def _settle(self, claim: Claim[Row], outcome: Outcome) -> None:
        model = self.kind.model
        # An outcome the engine or provider already acted on is worth keeping through a
        # short database outage: retry the write for as long as the lease lasts.
        deadline = time.monotonic() + self.kind.lease_seconds
        attempt = 0
        while True:
            try:
                async with self._sessions() as session:
                    row = await session.scalar(
                        select(model)
                        .where(model.id == _row_id(claim.row), model.lease_owner == claim.owner)
                        .with_for_update()
                    )
                    if row is None:
                        log.warning(
                            "%s %s: lease lost before its outcome was written",
                            self.kind.name,
                            _row_id(claim.row),
                        )
                        return
                    after = await self.kind.settle(session, row, outcome)
                    row.leased_until = None
                    row.lease_owner = None
                    await session.commit()
                break
            except Exception as error:
                attempt += 1
                if not is_transient(error) or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(backoff_delay(attempt, 0.2, 5.0))
        if after is not None:
            try:
                await after()
            except Exception:
                log.warning("%s: after-commit step failed", self.kind.name, exc_info=True)

    async def deliver(self, row_id: uuid.UUID) -> Outcome | None:
        """Try this row now; None if it is not due, held by another claimant, or done."""
        claim = await self.claim(row_id)
        if claim is None:
            return None
        return await self.process(claim)

    def new_lease(self) -> Lease:
        """A lease for a row about to be written (see ``Lease``)."""
        return Lease(
            owner=secrets.token_hex(8),
            until=self._clock() + timedelta(seconds=self.kind.lease_seconds),
        )

    async def deliver_leased(self, row_id: uuid.UUID, lease: Lease) -> Outcome | None:
        """Deliver a row written with ``lease``; None if the lease ran out meanwhile (the
        dispatchers have it then)."""
        model = self.kind.model
        async with self._sessions() as session:
            row = await session.scalar(
                select(model).where(
                    model.id == row_id,
                    model.lease_owner == lease.owner,
                    model.state == PENDING,
                )
            )
        if row is None:
            return None
        return await self.process(Claim(row, lease.owner))

    async def drain(self, stopped: asyncio.Event | None = None, limit: int = 1000) -> int:
        """Deliver due rows, ``concurrency`` at a time, until none is left; how many were."""
        done = 0

        async def worker() -> None:
            nonlocal done
            while done < limit and not (stopped is not None and stopped.is_set()):
                claim = await self.claim()
                if claim is None:
                    return
                done += 1
                await self.process(claim)

        await asyncio.gather(*(worker() for _ in range(self._concurrency)))
        return done

    async def run(self, stopped: asyncio.Event, interval_seconds: float) -> None:
        """Deliver until stopped, waiting out outages of the database with backoff.

        Only an error that is no outage ends the loop: it is a defect, and the process
        exits non-zero so that its supervisor restarts it and someone looks.
        """
        failures = 0
        while not stopped.is_set():
            try:
                done = await self.drain(stopped)
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                delay = backoff_delay(failures, interval_seconds, 30.0)
                log.warning(
                    "%s outbox: waiting %.1f s for the database: %s", self.kind.name, delay, error
                )
                await sleep_unless(stopped, delay)
                continue
            failures = 0
            if not done:
                await sleep_unless(stopped, jittered(interval_seconds))


def _row_id(row: Any) -> Any:
    return row.id
