"""Consumes the engine's records from the Redis exporter's streams: processes, forms, user
tasks, and the scopes and variables a task's form reads.

Zeebe 8.6 has no task listeners; the exporter is how a user task's lifecycle reaches us
(CREATED, COMPLETED, CANCELED), the same records Camunda's own Tasklist is built from. A
consumer group gives at-least-once delivery: a record is acknowledged only after its effect
is committed, and records a crashed consumer left unacknowledged are claimed again.

Three things can stop a record, and each is handled differently:

* an outage of PostgreSQL or Redis: nothing is acknowledged, and the loop waits it out
  with backoff;
* a record that must wait for another (a task whose form is not known yet): it stays
  pending and is tried again on every round, for at most ``defer_limit_seconds`` after it
  was exported;
* a record that can never be applied (unreadable, or an error that is no outage): it is
  moved to the dead-letter stream with the reason, logged once, counted, and the stream
  moves on. ``customer-panel dead-letters`` lists and replays them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.engine.mirror import DEAD_LETTER_STREAM, HANDLERS, STREAMS, record_payload
from panel_core.engine.records import NotYetKnownError, UnreadableRecordError
from panel_core.metrics import DEAD_LETTERS, ENGINE_RECORDS, RECORDS_DEFERRED
from panel_core.notifications.live import TASKS_CHANGED, publish_staff_update
from panel_core.resilience import backoff_delay, is_transient, sleep_unless

log = logging.getLogger(__name__)

# Dead letters are kept for an operator; the stream is capped so a flood cannot fill Redis.
DEAD_LETTER_MAX = 100_000


def _by_stream(batches: Any) -> dict[str, list[Any]]:
    """XREADGROUP answers a list of (stream, entries) pairs, or a dict under RESP3."""
    pairs = batches.items() if isinstance(batches, dict) else (batches or [])
    return {
        (name.decode() if isinstance(name, bytes) else str(name)): list(entries)
        for name, entries in pairs
    }


def entry_age_seconds(entry_id: bytes | str, now: float) -> float:
    """How long ago the exporter wrote the entry: stream ids start with its milliseconds."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        return now - int(text.split("-", 1)[0]) / 1000
    except ValueError:
        return 0.0


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._sessions = sessions
        self._group = group
        self._consumer = consumer
        self._block_ms = block_ms
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._defer_limit = defer_limit_seconds
        self._clock = clock
        self._stopped = asyncio.Event()
        # Entries already reported as waiting, so a long wait is logged once, not per round.
        self._waiting: set[bytes | str] = set()

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

    async def _dead_letter(
        self, stream: str, entry_id: bytes | str, payload: bytes, reason: str, kind: str
    ) -> None:
        # One transaction: the record is never both set aside and still pending, nor lost.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                DEAD_LETTER_STREAM,
                {"stream": stream, "entry": entry_id, "reason": reason, "record": payload},
                maxlen=DEAD_LETTER_MAX,
                approximate=True,
            )
            pipe.xack(stream, self._group, entry_id)
            await pipe.execute()
        self._waiting.discard(entry_id)
        DEAD_LETTERS.labels(stream, kind).inc()
        log.error("engine record %s of %s set aside (%s): %s", entry_id, stream, kind, reason)

    async def process_entry(
        self, stream: str, entry_id: bytes | str, fields: dict[bytes, bytes]
    ) -> bool:
        """Apply one record and acknowledge it; False leaves it pending for a later retry.

        An outage propagates (nothing is acknowledged); see the module docstring.
        """
        payload = record_payload(fields)
        handler = HANDLERS[stream]
        try:
            event = handler.read(payload)
        except UnreadableRecordError as exc:
            await self._dead_letter(stream, entry_id, payload, str(exc), "unreadable")
            return True
        if event is not None:
            try:
                async with self._sessions() as session:
                    await handler.apply(session, event)
                    await session.commit()
            except NotYetKnownError as exc:
                age = entry_age_seconds(entry_id, self._clock())
                if age > self._defer_limit:
                    reason = f"still waiting for {exc} after {age:.0f} s"
                    await self._dead_letter(stream, entry_id, payload, reason, "waited-too-long")
                    return True
                RECORDS_DEFERRED.labels(stream).inc()
                if entry_id not in self._waiting:
                    self._waiting.add(entry_id)
                    log.info("engine record %s of %s waits for %s", entry_id, stream, exc)
                return False
            except Exception as exc:
                if is_transient(exc):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                await self._dead_letter(stream, entry_id, payload, reason, "failed")
                return True
            ENGINE_RECORDS.labels(stream).inc()
            if stream == c.STREAM_USER_TASK:
                # Open inboxes read again what their member of staff may see.
                await publish_staff_update(self._redis, TASKS_CHANGED)
        await self._redis.xack(stream, self._group, entry_id)
        self._waiting.discard(entry_id)
        return True

    async def _apply(self, batches: Any) -> int:
        done = 0
        entries_by_stream = _by_stream(batches)
        for stream in STREAMS:
            for entry_id, fields in entries_by_stream.get(stream, []):
                if fields is None:  # deleted by the exporter's cleaner while pending
                    await self._redis.xack(stream, self._group, entry_id)
                    continue
                if await self.process_entry(stream, entry_id, fields):
                    done += 1
        return done

    async def run_once(self) -> int:
        """Process this consumer's pending records, claim stale ones, then read new ones."""
        done = 0
        pending = await self._redis.xreadgroup(
            self._group, self._consumer, dict.fromkeys(STREAMS, "0"), count=self._batch
        )
        done += await self._apply(pending)
        for stream in STREAMS:
            claimed = await self._redis.xautoclaim(
                stream, self._group, self._consumer, self._claim_idle_ms, "0-0", count=self._batch
            )
            if claimed and claimed[1]:
                done += await self._apply([(stream, claimed[1])])
        fresh = await self._redis.xreadgroup(
            self._group,
            self._consumer,
            dict.fromkeys(STREAMS, ">"),
            count=self._batch,
            block=self._block_ms,
        )
        done += await self._apply(fresh)
        return done

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
