"""The engine mirror: what each of the exporter's streams does to the panel's database.

Each stream has a reader (pure: payload to event, or ``UnreadableRecordError``) and an
applier (database work in the caller's transaction; ``NotYetKnownError`` when the record
must wait for another one). The record consumer in the workers runs them; the
``customer-panel dead-letters --replay`` command runs the same pair on set-aside records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.cases import closure
from panel_core.db.models import utcnow
from panel_core.engine.instances import record_incident, record_instance_state
from panel_core.engine.jobs import read_job, record_job
from panel_core.engine.records import (
    ProcessInstanceEvent,
    read_form,
    read_incident,
    read_process,
    read_process_instance,
    read_user_task,
    read_variable,
)
from panel_core.tasks.service import apply_user_task, record_form, record_process
from panel_core.variables import record_process_instance, record_variable

# The exporter's streams. Within a batch the consumer applies the deployments first (a
# process and a form must be known before the task that names and pins them), then each
# process instance's records in the engine's log order, the instances with a user task
# first; records of equal position (written by hand) keep this order, so a task's variables
# still come before its page shows.
STREAMS = (
    c.STREAM_PROCESS,
    c.STREAM_FORM,
    c.STREAM_PROCESS_INSTANCE,
    c.STREAM_VARIABLE,
    c.STREAM_USER_TASK,
    # After the instances they belong to, so a case page rarely shows an incident of an
    # instance it does not know yet.
    c.STREAM_INCIDENT,
    c.STREAM_JOB,
)
# Streams whose records belong to no process instance: every shard applies them (they are
# idempotent), so that no shard's tasks wait for another shard to learn a deployment.
DEPLOYMENT_STREAMS = frozenset({c.STREAM_PROCESS, c.STREAM_FORM})
# The records of a process's own element that end it.
ENDING = frozenset({"ELEMENT_COMPLETED", "ELEMENT_TERMINATED"})
# Where records that cannot be applied are set aside, with the reason, for an operator.
DEAD_LETTER_STREAM = "panel:engine-records:dead-letter"


@dataclass(frozen=True, slots=True)
class StreamHandler:
    read: Callable[[bytes], Any]
    apply: Callable[[AsyncSession, Any], Awaitable[None]]


async def apply_process_instance(session: AsyncSession, record: ProcessInstanceEvent) -> None:
    """One PROCESS_INSTANCE record feeds both the forms' scopes and the instance's state."""
    await record_process_instance(session, record)
    await record_instance_state(session, record)
    value = record.value
    if (
        value.bpmn_element_type == "PROCESS"
        and record.intent in ENDING
        and value.parent_process_instance_key <= 0
    ):
        await closure.instance_ended(
            session, value.process_instance_key, record.timestamp or utcnow()
        )


HANDLERS: dict[str, StreamHandler] = {
    c.STREAM_PROCESS: StreamHandler(read_process, record_process),
    c.STREAM_FORM: StreamHandler(read_form, record_form),
    c.STREAM_PROCESS_INSTANCE: StreamHandler(read_process_instance, apply_process_instance),
    c.STREAM_VARIABLE: StreamHandler(read_variable, record_variable),
    c.STREAM_USER_TASK: StreamHandler(read_user_task, apply_user_task),
    c.STREAM_INCIDENT: StreamHandler(read_incident, record_incident),
    c.STREAM_JOB: StreamHandler(read_job, record_job),
}


def record_payload(fields: dict[bytes, bytes]) -> bytes:
    """The record JSON of a stream entry (the exporter writes it under one field)."""
    return fields.get(b"record") or next(iter(fields.values()), b"")


async def replay_record(
    sessions: async_sessionmaker[AsyncSession], stream: str, payload: bytes
) -> str:
    """Apply a set-aside record again: "applied", or why it still cannot be."""
    handler = HANDLERS.get(stream)
    if handler is None:
        return f"not replayed: unknown stream {stream!r}"
    try:
        event = handler.read(payload)
        if event is not None:
            async with sessions() as session:
                await handler.apply(session, event)
                await session.commit()
    except Exception as exc:
        return f"not replayed: {type(exc).__name__}: {exc}"
    return "applied"


def consumer_group(base: str, shards: int = 1, shard: int = 0) -> str:
    """The consumer group of one record-consumer shard.

    One shard keeps the configured name (what a single worker process always used). With
    several, the name also says how many there are: a shard of another split applies other
    instances, and must not inherit a group whose entries were acknowledged for those.
    """
    if shards <= 1:
        return base
    if not 0 <= shard < shards:
        raise ValueError(f"record consumer shard {shard} is not one of 0..{shards - 1}")
    return f"{base}-{shard}-of-{shards}"


def shard_of(process_instance_key: int, shards: int) -> int:
    """The shard that applies a process instance's records; shard 0 takes the ones of none.

    All records of one instance go to one shard, which applies them in the engine's order.
    """
    if shards <= 1 or process_instance_key <= 0:
        return 0
    return process_instance_key % shards
