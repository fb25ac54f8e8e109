"""Consumes the engine's records from the Redis exporter's streams: processes, forms, user
tasks, and the scopes and variables a task's form reads.

Zeebe 8.6 has no task listeners; the exporter is how a user task's lifecycle reaches us
(CREATED, COMPLETED, CANCELED), the same records Camunda's own Tasklist is built from. A
consumer group gives at-least-once delivery: a record is acknowledged only after its effect
is committed, and records a crashed consumer left unacknowledged are claimed again.

Each round reads what the streams hold and applies it as one batch: one transaction (with a
savepoint per record as soon as one of them must wait or fails, so that it alone is rolled
back), then one pipelined acknowledgement after the commit. Deployments go
first; then the records of each process instance in the engine's log order (by position),
the instances that have a user task in the batch first, up to their last task record, so
that a task people wait for does not queue behind other instances' variables, yet never
overtakes its own instance's scopes and variables. A record is held for a later round when
an entry not read yet (another stream's, beyond what this round read) may precede it.

Three things can stop a record, and each is handled differently:

* an outage of PostgreSQL or Redis: the batch's transaction is rolled back, nothing is
  acknowledged, and the loop waits it out with backoff;
* a record that must wait for another (a task whose form is not known yet): its savepoint
  is rolled back alone, it stays pending and is tried again on every round, for at most
  ``defer_limit_seconds`` after it was exported;
* a record that can never be applied (unreadable, or an error that is no outage): its
  savepoint is rolled back alone, it is moved to the dead-letter stream with the reason,
  logged once, counted, and the stream moves on. ``customer-panel dead-letters`` lists and
  replays them.

Several consumer processes share the work as shards (``shards``, ``shard``): each has its
own consumer group, applies the records of the process instances that hash to it and
acknowledges the others unapplied, so one instance's records are only ever applied by one
shard, in order. Every shard applies deployments itself. Each shard must run in exactly one
process: two consumers in one group would split an instance's records between them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.db.transaction_hooks import savepoint
from panel_core.engine.mirror import (
    DEAD_LETTER_STREAM,
    DEPLOYMENT_STREAMS,
    HANDLERS,
    STREAMS,
    record_payload,
    shard_of,
)
from panel_core.engine.records import NotYetKnownError, UnreadableRecordError
from panel_core.metrics import DEAD_LETTERS, ENGINE_RECORDS, RECORDS_DEFERRED
from panel_core.notifications.live import TASKS_CHANGED, publish_staff_update
from panel_core.resilience import backoff_delay, is_transient, sleep_unless

log = logging.getLogger(__name__)

# Dead letters are kept for an operator; the stream is capped so a flood cannot fill Redis.
DEAD_LETTER_MAX = 100_000
# How many pages of its own pending entries a consumer reads again in one round. Beyond
# that (a flood of records waiting for something) the rest of a stream waits its turn.
PENDING_PAGES = 10
# How often a round reads further when every entry it read may follow one not read yet
# (entries written within the same millisecond at the edge of what was read).
EXTEND_LIMIT = 8
# After a round in which a record had to be rolled back alone, this many rounds apply
# with a savepoint per record straight away: a record waiting for its form is tried on
# every round, and would otherwise make each one apply its batch twice.
ISOLATED_ROUNDS = 20
_RANK = {stream: rank for rank, stream in enumerate(STREAMS)}
_NO_BOUND = (1 << 62, 0)


class _RouteValue(msgspec.Struct, frozen=True, rename="camel"):
    process_instance_key: int = -1


class _Route(msgspec.Struct, frozen=True, rename="camel"):
    """What routing and ordering need from any record, read without the rest of it."""

    position: int = 0
    value: _RouteValue | None = None


_route_decoder = msgspec.json.Decoder(_Route)


def _by_stream(batches: Any) -> dict[str, list[Any]]:
    """XREADGROUP answers a list of (stream, entries) pairs, or a dict under RESP3."""
    pairs = batches.items() if isinstance(batches, dict) else (batches or [])
    return {
        (name.decode() if isinstance(name, bytes) else str(name)): list(entries)
        for name, entries in pairs
    }


def _stream_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def _after(entry_id: bytes | str) -> tuple[int, int]:
    ms, seq = _stream_id(entry_id)
    return ms, seq + 1


def entry_age_seconds(entry_id: bytes | str, now: float) -> float:
    """How long ago the exporter wrote the entry: stream ids start with its milliseconds."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        return now - int(text.split("-", 1)[0]) / 1000
    except ValueError:
        return 0.0


@dataclass(slots=True)
class _Entry:
    stream: str
    entry_id: bytes | str
    fields: dict[bytes, bytes] | None
    order: int
    payload: bytes = b""
    instance: int = -1
    position: int = 0
    event: Any = None

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return self.position, _RANK[self.stream], self.order


@dataclass(slots=True)
class _Round:
    """The entries one round read, and, per stream, the first id it may not have read: of
    this consumer's pending entries, and of the stream's new ones."""

    entries: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    pending_unread: dict[str, tuple[int, int]] = field(default_factory=dict)
    new_unread: dict[str, tuple[int, int]] = field(default_factory=dict)
    seen: set[tuple[str, bytes | str]] = field(default_factory=set)
    count: int = 0

    def add(self, stream: str, entries: Iterable[Any]) -> int:
        added = 0
        for entry_id, fields in entries:
            if (stream, entry_id) in self.seen:
                continue
            self.seen.add((stream, entry_id))
            self.entries[stream].append(_Entry(stream, entry_id, fields, self.count))
            self.count += 1
            added += 1
        return added

    def pending_bound(self, stream: str, first_unread: tuple[int, int]) -> None:
        self.pending_unread[stream] = min(self.pending_unread.get(stream, _NO_BOUND), first_unread)

    def unread_from(self, stream: str) -> tuple[int, int] | None:
        bounds = [b for b in (self.pending_unread.get(stream), self.new_unread.get(stream)) if b]
        return min(bounds) if bounds else None

    @property
    def bounded(self) -> bool:
        return bool(self.pending_unread or self.new_unread)

    def may_apply(self, entry: _Entry, *, across_streams: bool = True) -> bool:
        """Whether no entry left unread can come before this one in the engine's log.

        Only the exporter's write time orders entries across streams: every entry written
        in an earlier millisecond than the first unread one of any stream has been read,
        in every stream. Those, and only those, are applied; the rest wait for a round
        that reads further. Without ``across_streams``, a stream's own order alone counts.
        """
        own = _stream_id(entry.entry_id)
        if across_streams:
            bounds = [*self.pending_unread.values(), *self.new_unread.values()]
            return not bounds or own[0] < min(bounds)[0]
        first_unread = self.unread_from(entry.stream)
        return first_unread is None or own < first_unread


@dataclass(slots=True)
class _Outcome:
    acknowledged: dict[str, list[bytes | str]] = field(default_factory=lambda: defaultdict(list))
    dead: list[tuple[_Entry, str, str]] = field(default_factory=list)
    applied: list[_Entry] = field(default_factory=list)
    counted: int = 0

    def ack(self, entry: _Entry, counted: bool = True) -> None:
        self.acknowledged[entry.stream].append(entry.entry_id)
        self.counted += counted


def schedule(entries: list[_Entry]) -> list[_Entry]:
    """The order a batch is applied in (see the module docstring)."""
    deployments = [e for e in entries if e.stream in DEPLOYMENT_STREAMS]
    by_instance: dict[int, list[_Entry]] = defaultdict(list)
    for entry in entries:
        if entry.stream not in DEPLOYMENT_STREAMS:
            by_instance[entry.instance].append(entry)
    first: list[tuple[int, list[_Entry]]] = []
    rest: list[tuple[int, list[_Entry]]] = []
    for records in by_instance.values():
        records.sort(key=lambda e: e.sort_key)
        last_task = max(
            (i for i, e in enumerate(records) if e.stream == c.STREAM_USER_TASK), default=-1
        )
        if last_task >= 0:
            task_order = min(e.order for e in records if e.stream == c.STREAM_USER_TASK)
            first.append((task_order, records[: last_task + 1]))
        if last_task + 1 < len(records):
            rest.append((records[last_task + 1].order, records[last_task + 1 :]))
    ordered = sorted(deployments, key=lambda e: (_RANK[e.stream], e.order))
    for _, records in sorted(first, key=lambda pair: pair[0]):
        ordered.extend(records)
    for _, records in sorted(rest, key=lambda pair: pair[0]):
        ordered.extend(records)
    return ordered


class EngineRecordConsumer:
    def __init__(
        self,
        redis: Redis,
        sessions: async_sessionmaker[AsyncSession],
        *,
        group: str,
        consumer: str,
        block_ms: int = 1000,
        batch: int = 100,
        claim_idle_ms: int = 30_000,
        defer_limit_seconds: float = 300.0,
        shards: int = 1,
        shard: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= shard < max(shards, 1):
            raise ValueError(f"record consumer shard {shard} is not one of 0..{shards - 1}")
        self._redis = redis
        self._sessions = sessions
        self._group = group
        self._consumer = consumer
        self._block_ms = block_ms
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._defer_limit = defer_limit_seconds
        self._shards = max(shards, 1)
        self._shard = shard
        self._clock = clock
        self._stopped = asyncio.Event()
        # Entries already reported as waiting, so a long wait is logged once, not per round.
        self._waiting: set[bytes | str] = set()
        # Rounds left that go straight to a savepoint per record (records were waiting).
        self._isolated_rounds_left = 0

    @property
    def group(self) -> str:
        return self._group

    def stop(self) -> None:
        self._stopped.set()

    async def ensure_groups(self) -> None:
        for stream in STREAMS:
            try:
                # "0": a new group starts at the beginning, so nothing exported before the
                # workers first ran is missed.
                await self._redis.xgroup_create(stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self) -> _Round:
        """This consumer's pending entries, stale ones of others, then new ones."""
        batch = _Round()
        starts: dict[Any, Any] = dict.fromkeys(STREAMS, "0")
        for _page in range(PENDING_PAGES):
            got = _by_stream(
                await self._redis.xreadgroup(self._group, self._consumer, starts, count=self._batch)
            )
            further: dict[Any, Any] = {}
            for stream in starts:
                entries = got.get(stream, [])
                batch.add(stream, entries)
                if len(entries) >= self._batch:
                    further[stream] = entries[-1][0]
            starts = further
            if not starts:
                break
        for stream, last in starts.items():
            batch.pending_bound(stream, _after(last))
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in STREAMS:
                pipe.xautoclaim(
                    stream, self._group, self._consumer, self._claim_idle_ms, "0-0",
                    count=self._batch,
                )  # fmt: skip
            claims = await pipe.execute()
        for stream, claimed in zip(STREAMS, claims, strict=True):
            if claimed and claimed[1]:
                batch.add(stream, claimed[1])
                if _stream_id(claimed[0]) != (0, 0):
                    batch.pending_bound(stream, _stream_id(claimed[0]))
        await self._read_new(batch, STREAMS, block=not batch.count)
        return batch

    async def _read_new(self, batch: _Round, streams: Iterable[str], *, block: bool) -> bool:
        fresh = _by_stream(
            await self._redis.xreadgroup(
                self._group,
                self._consumer,
                dict.fromkeys(streams, ">"),
                count=self._batch,
                block=self._block_ms if block else None,
            )
        )
        grew = False
        for stream in streams:
            entries = fresh.get(stream, [])
            grew |= batch.add(stream, entries) > 0
            if len(entries) >= self._batch:
                batch.new_unread[stream] = _after(entries[-1][0])
            else:
                batch.new_unread.pop(stream, None)
        return grew

    def _route(self, entry: _Entry) -> bool:
        """Read what ordering needs; whether this shard applies the entry."""
        assert entry.fields is not None
        entry.payload = record_payload(entry.fields)
        try:
            route = _route_decoder.decode(entry.payload)
        except msgspec.MsgspecError:
            route = None
        if route is not None:
            entry.position = route.position
            entry.instance = route.value.process_instance_key if route.value else -1
        if entry.stream in DEPLOYMENT_STREAMS:
            return True
        return shard_of(entry.instance, self._shards) == self._shard

    def _dead_letter_here(self, entry: _Entry) -> bool:
        """Whether this shard sets the entry aside: a deployment only in shard 0, so that
        the operator sees it once."""
        return entry.stream not in DEPLOYMENT_STREAMS or self._shard == 0

    def _prepare(
        self, batch: _Round, outcome: _Outcome, *, across_streams: bool = True
    ) -> list[_Entry]:
        """Sort the round's entries into what to apply and what is settled without it."""
        to_apply: list[_Entry] = []
        for stream in STREAMS:
            for entry in batch.entries.get(stream, []):
                if entry.fields is None:  # deleted by the exporter's cleaner while pending
                    outcome.ack(entry, counted=False)
                    continue
                if not self._route(entry):
                    outcome.ack(entry)
                    continue
                if not batch.may_apply(entry, across_streams=across_streams):
                    continue
                try:
                    entry.event = HANDLERS[stream].read(entry.payload)
                except UnreadableRecordError as exc:
                    if self._dead_letter_here(entry):
                        outcome.dead.append((entry, str(exc), "unreadable"))
                    else:
                        outcome.ack(entry)
                    continue
                if entry.event is None:
                    outcome.ack(entry)
                    continue
                to_apply.append(entry)
        return to_apply

    def _waits(self, entry: _Entry, exc: NotYetKnownError, outcome: _Outcome) -> None:
        age = entry_age_seconds(entry.entry_id, self._clock())
        if age > self._defer_limit:
            reason = f"still waiting for {exc} after {age:.0f} s"
            outcome.dead.append((entry, reason, "waited-too-long"))
            return
        RECORDS_DEFERRED.labels(entry.stream).inc()
        if entry.entry_id not in self._waiting:
            self._waiting.add(entry.entry_id)
            log.info("engine record %s of %s waits for %s", entry.entry_id, entry.stream, exc)

    async def _apply(self, entries: list[_Entry], outcome: _Outcome) -> None:
        """Apply the entries in one transaction; an outage propagates, nothing committed.

        The batch is first applied without savepoints, which cost two round trips a record;
        when a record must wait or fails, that attempt is rolled back whole and the batch
        applied again with a savepoint per record, so that one record is rolled back alone.
        """
        if not entries:
            return
        ordered = schedule(entries)
        if self._isolated_rounds_left > 0:
            self._isolated_rounds_left -= 1
        else:
            try:
                async with self._sessions() as session, session.begin():
                    for entry in ordered:
                        await HANDLERS[entry.stream].apply(session, entry.event)
            except Exception as exc:
                if is_transient(exc):
                    raise
            else:
                for entry in ordered:
                    outcome.applied.append(entry)
                    outcome.ack(entry)
                return
        if await self._apply_isolated(ordered, outcome):
            self._isolated_rounds_left = ISOLATED_ROUNDS

    async def _apply_isolated(self, ordered: list[_Entry], outcome: _Outcome) -> bool:
        """Apply with a savepoint per record; whether any record was rolled back alone."""
        isolated = False
        async with self._sessions() as session, session.begin():
            for entry in ordered:
                try:
                    async with savepoint(session):
                        await HANDLERS[entry.stream].apply(session, entry.event)
                except NotYetKnownError as exc:
                    isolated = True
                    self._waits(entry, exc, outcome)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    isolated = True
                    if self._dead_letter_here(entry):
                        outcome.dead.append((entry, f"{type(exc).__name__}: {exc}", "failed"))
                    else:
                        log.warning("deployment record %s not applied: %s", entry.entry_id, exc)
                        outcome.ack(entry)
                else:
                    outcome.applied.append(entry)
                    outcome.ack(entry)
        return isolated

    async def _acknowledge(self, outcome: _Outcome) -> None:
        """Set aside and acknowledge in one transaction: a record is never both set aside and
        still pending, nor lost."""
        if not outcome.acknowledged and not outcome.dead:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry, reason, _kind in outcome.dead:
                pipe.xadd(
                    DEAD_LETTER_STREAM,
                    {
                        "stream": entry.stream,
                        "entry": entry.entry_id,
                        "group": self._group,
                        "reason": reason,
                        "record": entry.payload,
                    },
                    maxlen=DEAD_LETTER_MAX,
                    approximate=True,
                )
                pipe.xack(entry.stream, self._group, entry.entry_id)
            for stream, ids in outcome.acknowledged.items():
                pipe.xack(stream, self._group, *ids)
            await pipe.execute()

    def _settled(self, outcome: _Outcome) -> None:
        for entry, reason, kind in outcome.dead:
            self._waiting.discard(entry.entry_id)
            DEAD_LETTERS.labels(entry.stream, kind).inc()
            log.error(
                "engine record %s of %s set aside (%s): %s",
                entry.entry_id,
                entry.stream,
                kind,
                reason,
            )
        for entry in outcome.applied:
            self._waiting.discard(entry.entry_id)
            ENGINE_RECORDS.labels(entry.stream).inc()

    async def run_once(self) -> int:
        """Apply one round: returns how many entries it settled (applied, set aside, or
        acknowledged as another shard's or of no interest); waiting and held ones stay."""
        batch = await self._read()
        outcome = _Outcome()
        to_apply = self._prepare(batch, outcome)
        extended = 0
        while not (to_apply or outcome.acknowledged or outcome.dead) and batch.bounded:
            # Everything read may follow an entry not read yet: read further (every stream,
            # so that none is left behind what the others read), until the edge moves past
            # the shared millisecond; in the end, go by each stream's own order alone
            # rather than stall.
            strict = extended < EXTEND_LIMIT
            if strict:
                extended += 1
                await self._read_new(batch, STREAMS, block=False)
            outcome = _Outcome()
            to_apply = self._prepare(batch, outcome, across_streams=strict)
            if not strict:
                break
        await self._apply(to_apply, outcome)
        await self._acknowledge(outcome)
        self._settled(outcome)
        if any(entry.stream == c.STREAM_USER_TASK for entry in outcome.applied):
            # Open inboxes read again what their member of staff may see.
            await publish_staff_update(self._redis, TASKS_CHANGED)
        return outcome.counted + len(outcome.dead)

    async def run(self) -> None:
        """Consume until stopped. Outages are waited out; a defect ends the loop (and the
        process, non-zero)."""
        failures = 0
        groups_ready = False
        while not self._stopped.is_set():
            try:
                if not groups_ready:
                    await self.ensure_groups()
                    groups_ready = True
                await self.run_once()
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Redis lost the consumer group (restarted without persistence): the group
                # starts again from the records still in the streams; see the operations
                # guide on re-synchronising what was lost.
                log.error("consumer group %s is gone from Redis; creating it again", self._group)
                groups_ready = False
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                delay = backoff_delay(failures, 0.5, 30.0)
                log.warning("engine records: waiting %.1f s for a service: %s", delay, exc)
                await sleep_unless(self._stopped, delay)
                groups_ready = False
