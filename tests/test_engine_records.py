"""The record consumer keeps going past records it cannot apply, and never leaves a task open
that the engine ended.

Records are written by hand into the exporter's streams of a separate Redis database (the
session's workers consume database 0), and applied to the session's PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.db.models import FormDefinition, PanelTask, ProcessDefinition, TaskState
from panel_core.engine.mirror import DEAD_LETTER_STREAM, replay_record
from panel_core.metrics import DEAD_LETTERS
from tests.conftest import Stack
from workers.engine_records import EngineRecordConsumer

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="records-test" isExecutable="true">
    <bpmn:userTask id="fill-in" name="Fill it in"/>
  </bpmn:process>
</bpmn:definitions>"""


def new_key() -> int:
    # Far from the engine's own keys, distinct per test.
    return 9_000_000_000_000_000 + random.randrange(10**15)


def record(value_type: str, intent: str, value: dict[str, Any], key: int = 1) -> bytes:
    return json.dumps(
        {
            "key": key,
            "intent": intent,
            "recordType": "EVENT",
            "valueType": value_type,
            "value": value,
        }
    ).encode()


def form_record(form_key: int, schema: Any = None, resource: str | None = None) -> bytes:
    document = schema or {"id": "records-test", "type": "default", "components": []}
    return record(
        "FORM",
        "CREATED",
        {
            "formKey": form_key,
            "formId": "records-test",
            "version": 1,
            "resource": resource or base64.b64encode(json.dumps(document).encode()).decode(),
        },
    )


def process_record(definition_key: int, xml: bytes = BPMN) -> bytes:
    return record(
        "PROCESS",
        "CREATED",
        {
            "processDefinitionKey": definition_key,
            "bpmnProcessId": "records-test",
            "version": 1,
            "resource": base64.b64encode(xml).decode(),
        },
    )


def task_record(
    intent: str, task_key: int, definition_key: int, form_key: int, **extra: Any
) -> bytes:
    return record(
        "USER_TASK",
        intent,
        {
            "userTaskKey": task_key,
            "processInstanceKey": task_key + 1,
            "elementInstanceKey": task_key + 2,
            "bpmnProcessId": "records-test",
            "elementId": "fill-in",
            "processDefinitionKey": definition_key,
            "formKey": form_key,
            **extra,
        },
        key=task_key,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def streams(stack: Stack) -> AsyncIterator[Redis]:
    redis = Redis.from_url(stack.redis.url.rsplit("/", 1)[0] + "/1")
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


def consumer(redis: Redis, sessions: async_sessionmaker[AsyncSession]) -> EngineRecordConsumer:
    return EngineRecordConsumer(
        redis, sessions, group="records-test", consumer="one", block_ms=50, defer_limit_seconds=60
    )


async def drain(records: EngineRecordConsumer) -> None:
    await records.ensure_groups()
    for _ in range(5):
        await records.run_once()


async def dead_letters(redis: Redis) -> dict[tuple[str, str], str]:
    """The set-aside records' reasons, by source stream and entry id."""
    return {
        (fields[b"stream"].decode(), fields[b"entry"].decode()): fields[b"reason"].decode()
        for _id, fields in await redis.xrange(DEAD_LETTER_STREAM)
    }


async def pending_ids(redis: Redis, stream: str) -> list[str]:
    entries = await redis.xpending_range(stream, "records-test", "-", "+", 100)
    return [e["message_id"].decode() for e in entries]


async def test_unreadable_records_are_set_aside_and_the_stream_moves_on(
    streams: Redis, sessions: async_sessionmaker[AsyncSession]
) -> None:
    good_form, bad_base64_form, bad_json_form, definition = (
        new_key(),
        new_key(),
        new_key(),
        new_key(),
    )
    ids = {
        "not json": await streams.xadd(c.STREAM_FORM, {"record": b"{not json"}),
        "bad base64": await streams.xadd(
            c.STREAM_FORM, {"record": form_record(bad_base64_form, resource="%%%not-base64")}
        ),
        "form not json": await streams.xadd(
            c.STREAM_FORM,
            {"record": form_record(bad_json_form, resource=base64.b64encode(b"{").decode())},
        ),
        "good form": await streams.xadd(c.STREAM_FORM, {"record": form_record(good_form)}),
        "bad xml": await streams.xadd(
            c.STREAM_PROCESS, {"record": process_record(new_key(), xml=b"<bpmn:definitions")}
        ),
        "good process": await streams.xadd(
            c.STREAM_PROCESS, {"record": process_record(definition)}
        ),
        "bad date": await streams.xadd(
            c.STREAM_USER_TASK,
            {
                "record": task_record(
                    "CREATED", new_key(), definition, good_form, dueDate="next Tuesday"
                )
            },
        ),
    }
    before = DEAD_LETTERS.labels(c.STREAM_FORM, "unreadable")._value.get()
    await drain(consumer(streams, sessions))

    set_aside = await dead_letters(streams)
    stream_of = {"bad xml": c.STREAM_PROCESS, "bad date": c.STREAM_USER_TASK}
    entry = {
        name: (stream_of.get(name, c.STREAM_FORM), entry_id.decode())
        for name, entry_id in ids.items()
    }
    assert set(set_aside) == {
        entry[name] for name in ("not json", "bad base64", "form not json", "bad xml", "bad date")
    }
    assert "not base64" in set_aside[entry["bad base64"]]
    assert "is not JSON" in set_aside[entry["form not json"]]
    assert "not XML" in set_aside[entry["bad xml"]]
    assert "ISO 8601" in set_aside[entry["bad date"]]
    assert DEAD_LETTERS.labels(c.STREAM_FORM, "unreadable")._value.get() == before + 3
    # Nothing is left pending: the consumer went on past every one of them.
    for stream in (c.STREAM_FORM, c.STREAM_PROCESS, c.STREAM_USER_TASK):
        assert await pending_ids(streams, stream) == []
    async with sessions() as session:
        assert await session.get(FormDefinition, good_form) is not None
        assert await session.get(ProcessDefinition, definition) is not None


async def test_a_record_waiting_for_its_form_waits_then_is_set_aside_when_too_old(
    streams: Redis, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition = new_key()
    await streams.xadd(c.STREAM_PROCESS, {"record": process_record(definition)})
    # An entry id is the exporter's write time: this one was exported long ago.
    ancient = await streams.xadd(
        c.STREAM_USER_TASK,
        {"record": task_record("CREATED", new_key(), definition, new_key())},
        id="1000-0",
    )
    waiting_task = new_key()
    waiting_form = new_key()
    waiting = await streams.xadd(
        c.STREAM_USER_TASK,
        {"record": task_record("CREATED", waiting_task, definition, waiting_form)},
    )
    records = consumer(streams, sessions)
    await drain(records)
    set_aside = await dead_letters(streams)
    assert "still waiting for form" in set_aside[(c.STREAM_USER_TASK, ancient.decode())]
    assert await pending_ids(streams, c.STREAM_USER_TASK) == [waiting.decode()]

    # Its form arrives: the waiting record is applied on the next round.
    await streams.xadd(c.STREAM_FORM, {"record": form_record(waiting_form)})
    await drain(records)
    assert await pending_ids(streams, c.STREAM_USER_TASK) == []
    async with sessions() as session:
        task = await session.scalar(
            select(PanelTask).where(PanelTask.user_task_key == waiting_task)
        )
    assert task is not None and task.state == TaskState.OPEN


async def test_a_cancellation_that_overtakes_its_waiting_creation_leaves_no_open_task(
    streams: Redis, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition, form, task_key = new_key(), new_key(), new_key()
    await streams.xadd(c.STREAM_PROCESS, {"record": process_record(definition)})
    await streams.xadd(
        c.STREAM_USER_TASK, {"record": task_record("CREATED", task_key, definition, form)}
    )
    await streams.xadd(
        c.STREAM_USER_TASK, {"record": task_record("CANCELED", task_key, definition, form)}
    )
    records = consumer(streams, sessions)
    await drain(records)
    async with sessions() as session:
        assert (
            await session.scalar(select(PanelTask).where(PanelTask.user_task_key == task_key))
            is None
        )
    await streams.xadd(c.STREAM_FORM, {"record": form_record(form)})
    await drain(records)
    async with sessions() as session:
        task = await session.scalar(select(PanelTask).where(PanelTask.user_task_key == task_key))
    assert task is not None
    assert task.state == TaskState.WITHDRAWN
    assert task.closed_at is not None


async def test_a_set_aside_record_applies_once_its_cause_is_fixed(
    streams: Redis, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """What ``customer-panel dead-letters --replay`` does for each entry."""
    definition, form, task_key = new_key(), new_key(), new_key()
    payload = task_record("CREATED", task_key, definition, form)
    assert (await replay_record(sessions, c.STREAM_USER_TASK, payload)).startswith(
        "not replayed: FormNotYetKnownError"
    )
    async with sessions() as session:
        session.add(
            ProcessDefinition(
                process_definition_key=definition,
                bpmn_process_id="records-test",
                version=1,
                element_names={"fill-in": "Fill it in"},
            )
        )
        session.add(
            FormDefinition(
                form_key=form,
                form_id="records-test",
                version=1,
                schema={"components": []},
                problems=[],
            )
        )
        await session.commit()
    assert await replay_record(sessions, c.STREAM_USER_TASK, payload) == "applied"
    assert await replay_record(sessions, "zeebe:UNKNOWN", payload) == (
        "not replayed: unknown stream 'zeebe:UNKNOWN'"
    )
    async with sessions() as session:
        task = await session.scalar(select(PanelTask).where(PanelTask.user_task_key == task_key))
    assert task is not None and task.name == "Fill it in"
    assert uuid.UUID(str(task.id))
