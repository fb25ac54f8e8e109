"""Consumes the engine's records from the Redis exporter's streams: processes, forms, user
tasks, and the scopes and variables a task's form reads.

Zeebe 8.6 has no task listeners; the exporter is how a user task's lifecycle reaches us
(CREATED, COMPLETED, CANCELED), the same records Camunda's own Tasklist is built from. A
consumer group gives at-least-once delivery: a record is acknowledged only after its effect
is committed, and records a crashed consumer left unacknowledged are claimed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.db.models import TaskState
from panel_core.engine.records import (
    decode_form,
    decode_process,
    decode_process_instance,
    decode_user_task,
    decode_variable,
)
from panel_core.tasks import (
    FormNotYetKnownError,
    record_form,
    record_process,
    record_task_closed,
    record_task_created,
)
from panel_core.variables import record_process_instance, record_variable

log = logging.getLogger(__name__)

# Streams are read in this order within every batch: a process and a form must be known
# before the task that names and pins them, and a task's variables before its page shows.
STREAMS = (
    c.STREAM_PROCESS,
    c.STREAM_FORM,
    c.STREAM_PROCESS_INSTANCE,
    c.STREAM_VARIABLE,
    c.STREAM_USER_TASK,
)


async def handle_form_record(session: AsyncSession, payload: bytes) -> None:
    record = decode_form(payload)
    if record.record_type == "EVENT" and record.intent == "CREATED":
        await record_form(session, record.value)


async def handle_process_record(session: AsyncSession, payload: bytes) -> None:
    record = decode_process(payload)
    if record.record_type == "EVENT" and record.intent == "CREATED":
        await record_process(session, record.value)


async def handle_user_task_record(session: AsyncSession, payload: bytes) -> None:
    record = decode_user_task(payload)
    if record.record_type != "EVENT":
        return
    if record.intent == "CREATED":
        created = await record_task_created(session, record.value)
        if not created:
            log.info("user task %s already recorded", record.value.user_task_key)
    elif record.intent == "COMPLETED":
        await record_task_closed(session, record.value.user_task_key, TaskState.COMPLETED)
    elif record.intent == "CANCELED":
        await record_task_closed(session, record.value.user_task_key, TaskState.WITHDRAWN)


async def handle_process_instance_record(session: AsyncSession, payload: bytes) -> None:
    await record_process_instance(session, decode_process_instance(payload))


async def handle_variable_record(session: AsyncSession, payload: bytes) -> None:
    await record_variable(session, decode_variable(payload))


HANDLERS: dict[str, Callable[[AsyncSession, bytes], Awaitable[None]]] = {
    c.STREAM_PROCESS: handle_process_record,
    c.STREAM_FORM: handle_form_record,
    c.STREAM_PROCESS_INSTANCE: handle_process_instance_record,
    c.STREAM_VARIABLE: handle_variable_record,
    c.STREAM_USER_TASK: handle_user_task_record,
}


def _by_stream(batches: Any) -> dict[str, list[Any]]:
    """XREADGROUP answers a list of (stream, entries) pairs, or a dict under RESP3."""
    pairs = batches.items() if isinstance(batches, dict) else (batches or [])
    return {
        (name.decode() if isinstance(name, bytes) else str(name)): list(entries)
        for name, entries in pairs
    }


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
    ) -> None:
        self._redis = redis
        self._sessions = sessions
        self._group = group
        self._consumer = consumer
        self._block_ms = block_ms
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._stopped = asyncio.Event()

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

    async def process_entry(
        self, stream: str, entry_id: bytes | str, fields: dict[bytes, bytes]
    ) -> bool:
        """Apply one record and acknowledge it; False leaves it pending for a later retry."""
        payload = fields.get(b"record") or next(iter(fields.values()), b"")
        try:
            async with self._sessions() as session:
                await HANDLERS[stream](session, payload)
                await session.commit()
        except FormNotYetKnownError:
            return False
        except msgspec.DecodeError:
            # A record this version cannot read would block the stream forever; log it with
            # its id so an operator can look at it, and move on.
            log.exception("unreadable record %s on %s", entry_id, stream)
        await self._redis.xack(stream, self._group, entry_id)
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
        await self._wait_for_redis()
        while not self._stopped.is_set():
            try:
                await self.run_once()
            except RedisError as exc:
                log.warning("redis unavailable for engine records: %s", exc)
                await asyncio.sleep(1.0)
                await self._wait_for_redis()

    async def _wait_for_redis(self) -> None:
        while not self._stopped.is_set():
            try:
                await self.ensure_groups()
                return
            except RedisError as exc:
                log.warning("waiting for redis: %s", exc)
                await asyncio.sleep(1.0)
