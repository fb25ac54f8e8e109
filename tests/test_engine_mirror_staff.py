"""What the staff dashboard reads from the engine's records: every change of a user task, the
process instances' states and the incidents, so that it never needs Operate.

The first tests write records by hand into the exporter's streams of a separate Redis
database (the session's workers consume database 0) and apply them to the session's
PostgreSQL; the last ones drive the real engine through its REST API.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.db.models import (
    EngineIncident,
    EngineProcessInstance,
    EngineScope,
    IncidentState,
    PanelTask,
    PanelTaskCandidateGroup,
    ProcessInstanceState,
    TaskState,
)
from panel_core.engine.instances import open_incident_counts
from panel_core.engine.mirror import DEAD_LETTER_STREAM
from tests import credit
from tests.conftest import Stack
from tests.helpers import eventually
from workers.engine_records import EngineRecordConsumer

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

PROCESS_ID = "staff-mirror-test"
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="staff-mirror-test-definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{PROCESS_ID}" isExecutable="true">
    <bpmn:startEvent id="started"/>
    <bpmn:sequenceFlow id="to-review" sourceRef="started" targetRef="review"/>
    <bpmn:userTask id="review" name="Review the case">
      <bpmn:extensionElements>
        <zeebe:userTask/>
        <zeebe:assignmentDefinition candidateGroups="{credit.GROUP_CREDIT_ANALYSTS}"/>
        <zeebe:priorityDefinition priority="70"/>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="to-end" sourceRef="review" targetRef="done"/>
    <bpmn:endEvent id="done"/>
  </bpmn:process>
</bpmn:definitions>""".encode()
ANALYST = "anna.analityk"


def new_key() -> int:
    # Far from the engine's own keys, distinct per test.
    return 8_000_000_000_000_000 + random.randrange(10**15)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record(
    value_type: str,
    intent: str,
    value: dict[str, Any],
    *,
    key: int,
    position: int,
    timestamp: datetime | None = None,
) -> dict[bytes, bytes]:
    body = {
        "key": key,
        "position": position,
        "timestamp": millis(timestamp or datetime.now(UTC)),
        "intent": intent,
        "recordType": "EVENT",
        "valueType": value_type,
        "value": value,
    }
    return {b"record": json.dumps(body).encode()}


def process_record(
    definition_key: int, position: int, xml: bytes = BPMN, version: int = 1
) -> dict[bytes, bytes]:
    return record(
        "PROCESS",
        "CREATED",
        {
            "processDefinitionKey": definition_key,
            "bpmnProcessId": PROCESS_ID,
            "version": version,
            "resource": base64.b64encode(xml).decode(),
        },
        key=definition_key,
        position=position,
    )


def form_record(form_key: int, position: int) -> dict[bytes, bytes]:
    schema = {"id": "staff-mirror-test", "type": "default", "components": []}
    return record(
        "FORM",
        "CREATED",
        {
            "formKey": form_key,
            "formId": "staff-mirror-test",
            "version": 1,
            "resource": base64.b64encode(json.dumps(schema).encode()).decode(),
        },
        key=form_key,
        position=position,
    )


def task_record(
    intent: str, task_key: int, definition_key: int, position: int, **extra: Any
) -> dict[bytes, bytes]:
    value = {
        "userTaskKey": task_key,
        "processInstanceKey": task_key + 1,
        "elementInstanceKey": task_key + 2,
        "bpmnProcessId": PROCESS_ID,
        "elementId": "review",
        "processDefinitionKey": definition_key,
        "formKey": -1,
        "assignee": "",
        "candidateGroupsList": [credit.GROUP_CREDIT_ANALYSTS],
        "candidateUsersList": [ANALYST],
        "dueDate": "",
        "followUpDate": "",
        "priority": 70,
        "changedAttributes": [],
        **extra,
    }
    return record("USER_TASK", intent, value, key=task_key, position=position)


def instance_record(
    intent: str,
    instance_key: int,
    position: int,
    timestamp: datetime | None = None,
    parent: tuple[int, int] = (-1, -1),
    bpmn_process_id: str = PROCESS_ID,
) -> dict[bytes, bytes]:
    value = {
        "bpmnElementType": "PROCESS",
        "elementId": bpmn_process_id,
        "flowScopeKey": -1,
        "processInstanceKey": instance_key,
        "bpmnProcessId": bpmn_process_id,
        "processDefinitionKey": instance_key + 7,
        "version": 3,
        "parentProcessInstanceKey": parent[0],
        "parentElementInstanceKey": parent[1],
    }
    return record(
        "PROCESS_INSTANCE", intent, value, key=instance_key, position=position, timestamp=timestamp
    )


def incident_record(
    intent: str,
    incident_key: int,
    instance_key: int,
    position: int,
    timestamp: datetime | None = None,
    path: list[list[int]] | None = None,
    **extra: Any,
) -> dict[bytes, bytes]:
    value = {
        "processInstanceKey": instance_key,
        "bpmnProcessId": PROCESS_ID,
        "processDefinitionKey": instance_key + 7,
        "elementId": "mark-status",
        "elementInstanceKey": instance_key + 3,
        "jobKey": instance_key + 4,
        "errorType": "JOB_NO_RETRIES",
        "errorMessage": "ModelError: Case 42 is not registered in the panel.",
        "variableScopeKey": instance_key + 3,
        "elementInstancePath": path if path is not None else [[instance_key, instance_key + 3]],
        **extra,
    }
    return record(
        "INCIDENT", intent, value, key=incident_key, position=position, timestamp=timestamp
    )


@pytest_asyncio.fixture(loop_scope="session")
async def streams(stack: Stack) -> AsyncIterator[Redis]:
    redis = Redis.from_url(stack.redis.url.rsplit("/", 1)[0] + "/2")
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
def records(streams: Redis, sessions: async_sessionmaker[AsyncSession]) -> EngineRecordConsumer:
    return EngineRecordConsumer(
        streams,
        sessions,
        group="staff-mirror-test",
        consumer="one",
        block_ms=50,
        defer_limit_seconds=60,
    )


async def drain(records: EngineRecordConsumer) -> None:
    await records.ensure_groups()
    for _ in range(5):
        await records.run_once()


async def add(streams: Redis, stream: str, *entries: dict[bytes, bytes]) -> None:
    for fields in entries:
        await streams.xadd(stream, fields)  # type: ignore[arg-type]


async def task_row(sessions: async_sessionmaker[AsyncSession], task_key: int) -> PanelTask:
    async with sessions() as session:
        task = await session.scalar(select(PanelTask).where(PanelTask.user_task_key == task_key))
    assert task is not None
    return task


async def groups_of(sessions: async_sessionmaker[AsyncSession], task: PanelTask) -> set[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(PanelTaskCandidateGroup.group).where(
                PanelTaskCandidateGroup.panel_task_id == task.id
            )
        )
        return set(rows)


async def offered_unassigned(
    sessions: async_sessionmaker[AsyncSession], groups: list[str]
) -> set[int]:
    """The inbox's "unassigned tasks offered to my groups", as the dashboard asks it."""
    async with sessions() as session:
        keys = await session.scalars(
            select(PanelTask.user_task_key).where(
                PanelTask.state == TaskState.OPEN,
                PanelTask.assignee.is_(None),
                PanelTask.id.in_(
                    select(PanelTaskCandidateGroup.panel_task_id).where(
                        PanelTaskCandidateGroup.group.in_(groups)
                    )
                ),
            )
        )
        return set(keys)


async def test_a_staff_task_is_assigned_unassigned_and_leaves_the_inbox_when_it_ends(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition, task_key, at = new_key(), new_key(), random.randrange(10**9)
    await add(streams, c.STREAM_PROCESS, process_record(definition, at))
    await add(streams, c.STREAM_USER_TASK, task_record("CREATED", task_key, definition, at + 1))
    await drain(records)
    task = await task_row(sessions, task_key)
    assert (task.assignee, task.participant_id, task.state) == (None, None, TaskState.OPEN)
    assert task.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]
    assert task.candidate_users == [ANALYST]
    assert task.engine_position == at + 1
    assert await groups_of(sessions, task) == {credit.GROUP_CREDIT_ANALYSTS}
    assert task_key in await offered_unassigned(sessions, [credit.GROUP_CREDIT_ANALYSTS, "other"])
    assert task_key not in await offered_unassigned(sessions, ["other"])

    # A member of staff's username is no participant: the task stays a staff task.
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("ASSIGNING", task_key, definition, at + 2, assignee=ANALYST),
        task_record("ASSIGNED", task_key, definition, at + 3, assignee=ANALYST),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert (task.assignee, task.participant_id, task.engine_position) == (ANALYST, None, at + 3)
    assert task_key not in await offered_unassigned(sessions, [credit.GROUP_CREDIT_ANALYSTS])

    # An unassignment is an assignment to nobody.
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("ASSIGNED", task_key, definition, at + 5, action="unassign"),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert task.assignee is None
    assert task_key in await offered_unassigned(sessions, [credit.GROUP_CREDIT_ANALYSTS])

    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("COMPLETING", task_key, definition, at + 6),
        task_record("COMPLETED", task_key, definition, at + 7),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert (task.state, task.engine_position) == (TaskState.COMPLETED, at + 7)
    assert task.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]
    assert await groups_of(sessions, task) == set()


async def test_an_update_changes_only_the_attributes_it_names(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition, task_key, at = new_key(), new_key(), random.randrange(10**9)
    await add(streams, c.STREAM_PROCESS, process_record(definition, at))
    await add(streams, c.STREAM_USER_TASK, task_record("CREATED", task_key, definition, at + 1))
    # The record repeats the task's other attributes; these differ here to prove they are
    # not read.
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record(
            "UPDATED",
            task_key,
            definition,
            at + 3,
            changedAttributes=["dueDate", "priority"],
            dueDate="2031-05-06T07:08:09.000Z",
            priority=80,
            followUpDate="2031-01-01T00:00:00.000Z",
            candidateGroupsList=["someone-else"],
            assignee="someone",
        ),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert task.due_date == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert task.priority == 80
    assert task.follow_up_date is None
    assert task.assignee is None
    assert task.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]

    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record(
            "UPDATED",
            task_key,
            definition,
            at + 5,
            changedAttributes=["candidateGroupsList", "candidateUsersList", "dueDate"],
            candidateGroupsList=["risk", "credit-managers"],
            candidateUsersList=[],
        ),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert task.candidate_groups == ["risk", "credit-managers"]
    assert task.candidate_users == []
    assert task.due_date is None
    assert task.priority == 80
    assert await groups_of(sessions, task) == {"risk", "credit-managers"}
    assert task_key not in await offered_unassigned(sessions, [credit.GROUP_CREDIT_ANALYSTS])
    assert task_key in await offered_unassigned(sessions, ["risk"])


async def test_a_record_delivered_again_or_late_never_undoes_a_newer_one(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition, task_key, at = new_key(), new_key(), random.randrange(10**9)
    await add(streams, c.STREAM_PROCESS, process_record(definition, at))
    assigned_to_anna = task_record("ASSIGNED", task_key, definition, at + 2, assignee=ANALYST)
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("CREATED", task_key, definition, at + 1),
        assigned_to_anna,
        task_record("ASSIGNED", task_key, definition, at + 6, assignee="bob.broker"),
        # Late: older than bob's assignment, which it must not undo...
        assigned_to_anna,
        # ...while a late change of another attribute is not lost...
        task_record(
            "UPDATED", task_key, definition, at + 4, changedAttributes=["priority"], priority=90
        ),
        # ...unless a newer record changed that attribute too.
        task_record(
            "UPDATED", task_key, definition, at + 3, changedAttributes=["priority"], priority=10
        ),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert (task.assignee, task.priority, task.engine_position) == ("bob.broker", 90, at + 6)

    # Every record of the stream again, as a new consumer group reads them.
    replay = EngineRecordConsumer(
        streams, sessions, group=f"replay-{uuid.uuid4()}", consumer="replay", block_ms=50
    )
    await drain(replay)
    task = await task_row(sessions, task_key)
    assert (task.assignee, task.priority, task.engine_position) == ("bob.broker", 90, at + 6)


async def test_a_change_waits_for_the_creation_it_follows(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    definition, form, task_key, at = new_key(), new_key(), new_key(), random.randrange(10**9)
    await add(streams, c.STREAM_PROCESS, process_record(definition, at))
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("CREATED", task_key, definition, at + 1, formKey=form),
        task_record("ASSIGNED", task_key, definition, at + 2, formKey=form, assignee=ANALYST),
    )
    await drain(records)
    pending = await streams.xpending(c.STREAM_USER_TASK, "staff-mirror-test")
    assert pending["pending"] == 2
    await add(streams, c.STREAM_FORM, form_record(form, at + 3))
    await drain(records)
    task = await task_row(sessions, task_key)
    assert task.assignee == ANALYST
    assert (await streams.xpending(c.STREAM_USER_TASK, "staff-mirror-test"))["pending"] == 0


async def test_a_migrated_task_takes_its_new_element_and_name(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    old, new, task_key, at = new_key(), new_key(), new_key(), random.randrange(10**9)
    second = BPMN.replace(b'id="review" name="Review the case"', b'id="check" name="Check it"')
    await add(
        streams,
        c.STREAM_PROCESS,
        process_record(old, at),
        process_record(new, at + 1, xml=second, version=2),
    )
    await add(
        streams,
        c.STREAM_USER_TASK,
        task_record("CREATED", task_key, old, at + 2),
        task_record("MIGRATED", task_key, new, at + 3, elementId="check"),
    )
    await drain(records)
    task = await task_row(sessions, task_key)
    assert (task.element_id, task.name, task.engine_position) == ("check", "Check it", at + 3)


async def test_a_resolution_applied_before_its_creation_leaves_a_resolved_incident(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    instance, incident, at = new_key(), new_key(), random.randrange(10**9)
    created_at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    resolved_at = datetime(2026, 3, 4, 6, 0, 0, tzinfo=UTC)
    await add(
        streams,
        c.STREAM_INCIDENT,
        incident_record("RESOLVED", incident, instance, at + 9, resolved_at),
        incident_record("CREATED", incident, instance, at + 1, created_at),
        incident_record("CREATED", incident, instance, at + 1, created_at),
    )
    await drain(records)
    async with sessions() as session:
        row = await session.get(EngineIncident, incident)
        counts = await open_incident_counts(session, [instance])
    assert row is not None
    assert row.state == IncidentState.RESOLVED
    assert (row.created_at, row.resolved_at) == (created_at, resolved_at)
    assert (row.process_instance_key, row.root_process_instance_key) == (instance, instance)
    assert (row.job_key, row.element_id, row.element_instance_key) == (
        instance + 4,
        "mark-status",
        instance + 3,
    )
    assert row.error_type == "JOB_NO_RETRIES"
    assert row.error_message == "ModelError: Case 42 is not registered in the panel."
    assert row.bpmn_process_id == PROCESS_ID
    assert counts == {}

    # In order: open, then resolved; a creation delivered again changes nothing.
    second = new_key()
    await add(streams, c.STREAM_INCIDENT, incident_record("CREATED", second, instance, at + 10))
    await drain(records)
    async with sessions() as session:
        assert await open_incident_counts(session, [instance]) == {instance: 1}
    await add(
        streams,
        c.STREAM_INCIDENT,
        incident_record("RESOLVED", second, instance, at + 12),
        incident_record("CREATED", second, instance, at + 10),
    )
    await drain(records)
    async with sessions() as session:
        row = await session.get(EngineIncident, second)
        assert await open_incident_counts(session, [instance]) == {}
    assert row is not None and row.state == IncidentState.RESOLVED


async def test_unreadable_incident_records_are_set_aside(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    broken = incident_record("CREATED", new_key(), new_key(), 1, jobKey="not a key")
    timeless = incident_record("CREATED", new_key(), new_key(), 1)
    body = json.loads(timeless[b"record"])
    body["timestamp"] = 10**20
    await add(streams, c.STREAM_INCIDENT, broken, {b"record": json.dumps(body).encode()})
    await drain(records)
    reasons = [
        fields[b"reason"].decode() for _id, fields in await streams.xrange(DEAD_LETTER_STREAM)
    ]
    assert any("not a record this version reads" in reason for reason in reasons)
    assert any("not a timestamp" in reason for reason in reasons)
    assert (await streams.xpending(c.STREAM_INCIDENT, "staff-mirror-test"))["pending"] == 0


async def test_process_instances_keep_their_state_after_they_end(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    done, cancelled, at = new_key(), new_key(), random.randrange(10**9)
    started = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    ended = datetime(2026, 5, 2, 9, 30, tzinfo=UTC)
    late_activated = instance_record("ELEMENT_ACTIVATED", done, at + 2, started)
    await add(
        streams,
        c.STREAM_PROCESS_INSTANCE,
        instance_record("ELEMENT_ACTIVATING", done, at + 1, started),
        late_activated,
        instance_record("ELEMENT_ACTIVATING", cancelled, at + 3, started),
        instance_record("ELEMENT_COMPLETING", done, at + 4, ended),
        instance_record("ELEMENT_COMPLETED", done, at + 5, ended),
        instance_record("ELEMENT_TERMINATING", cancelled, at + 6, ended),
        instance_record("ELEMENT_TERMINATED", cancelled, at + 7, ended),
        # Delivered again after the end: the instance stays ended.
        late_activated,
    )
    await drain(records)
    async with sessions() as session:
        completed = await session.get(EngineProcessInstance, done)
        terminated = await session.get(EngineProcessInstance, cancelled)
        # The forms' copy of the instance is forgotten as before: only its end marker stays.
        scope = await session.get(EngineScope, done)
    assert completed is not None and terminated is not None
    assert (completed.state, completed.started_at, completed.ended_at) == (
        ProcessInstanceState.COMPLETED,
        started,
        ended,
    )
    assert (terminated.state, terminated.ended_at) == (ProcessInstanceState.TERMINATED, ended)
    assert (completed.bpmn_process_id, completed.process_definition_key, completed.version) == (
        PROCESS_ID,
        done + 7,
        3,
    )
    assert completed.parent_process_instance_key is None
    assert completed.root_process_instance_key == done
    assert scope is not None and scope.ended


async def test_a_call_activitys_child_is_kept_under_its_parent_and_root(
    streams: Redis, records: EngineRecordConsumer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root, child, grandchild, at = new_key(), new_key(), new_key(), random.randrange(10**9)
    call, inner_call = root + 11, child + 11
    await add(
        streams,
        c.STREAM_PROCESS_INSTANCE,
        instance_record("ELEMENT_ACTIVATING", root, at + 1),
        instance_record(
            "ELEMENT_ACTIVATING", child, at + 2, parent=(root, call), bpmn_process_id="kyc"
        ),
        instance_record(
            "ELEMENT_ACTIVATING",
            grandchild,
            at + 3,
            parent=(child, inner_call),
            bpmn_process_id="aml",
        ),
        instance_record("ELEMENT_COMPLETED", grandchild, at + 4, parent=(child, inner_call)),
    )
    # The child's job fails: the incident belongs to the child, and counts for the root.
    await add(
        streams,
        c.STREAM_INCIDENT,
        incident_record(
            "CREATED", new_key(), child, at + 5, path=[[root, call], [child, child + 3]]
        ),
        # Without the path (an engine that does not write it), the instance's row gives the root.
        incident_record("CREATED", new_key(), grandchild, at + 6, path=[]),
    )
    await drain(records)
    async with sessions() as session:
        tree = {
            row.process_instance_key: row
            for row in await session.scalars(
                select(EngineProcessInstance).where(
                    EngineProcessInstance.root_process_instance_key == root
                )
            )
        }
        counts = await open_incident_counts(session, [root, child])
        incident = await session.scalar(
            select(EngineIncident).where(EngineIncident.process_instance_key == child)
        )
    assert set(tree) == {root, child, grandchild}
    assert (tree[child].parent_process_instance_key, tree[child].parent_element_instance_key) == (
        root,
        call,
    )
    assert tree[child].bpmn_process_id == "kyc"
    assert tree[grandchild].parent_process_instance_key == child
    assert tree[grandchild].state == ProcessInstanceState.COMPLETED
    assert tree[root].state == ProcessInstanceState.ACTIVE
    assert counts == {root: 2}
    assert incident is not None and incident.root_process_instance_key == root


# -- the real engine ---------------------------------------------------------------------------


async def rest(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, **kwargs)


async def test_a_staff_task_follows_the_engine_s_assignments_and_updates(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    engine = stack.settings.camunda_rest_url
    deployed = await rest(
        "POST",
        f"{engine}/v2/deployments",
        files={"resources": ("staff-mirror-test.bpmn", BPMN, "application/xml")},
    )
    assert deployed.status_code == 200, deployed.text
    started = await rest(
        "POST", f"{engine}/v2/process-instances", json={"processDefinitionId": PROCESS_ID}
    )
    assert started.status_code == 200, started.text
    instance = int(started.json()["processInstanceKey"])

    async def task() -> PanelTask | None:
        async with sessions() as session:
            return await session.scalar(
                select(PanelTask).where(PanelTask.process_instance_key == instance)
            )

    created = await eventually(task, within=30)
    assert created.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]
    assert (created.assignee, created.participant_id, created.priority) == (None, None, 70)
    key = created.user_task_key

    assigned = await rest(
        "POST", f"{engine}/v2/user-tasks/{key}/assignment", json={"assignee": ANALYST}
    )
    assert assigned.status_code == 204, assigned.text

    async def assignee_is(expected: str | None) -> PanelTask | None:
        row = await task()
        return row if row is not None and row.assignee == expected else None

    row = await eventually(lambda: assignee_is(ANALYST), within=30)
    assert row.participant_id is None

    unassigned = await rest("DELETE", f"{engine}/v2/user-tasks/{key}/assignee")
    assert unassigned.status_code == 204, unassigned.text
    await eventually(lambda: assignee_is(None), within=30)

    due = "2031-05-06T07:08:09.000Z"
    updated = await rest(
        "PATCH",
        f"{engine}/v2/user-tasks/{key}",
        json={"changeset": {"dueDate": due, "priority": 80}},
    )
    assert updated.status_code == 204, updated.text

    async def updated_row() -> PanelTask | None:
        row = await task()
        return row if row is not None and row.priority == 80 else None

    row = await eventually(updated_row, within=30)
    assert row.due_date == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert row.assignee is None
    assert row.candidate_groups == [credit.GROUP_CREDIT_ANALYSTS]
    assert await groups_of(sessions, row) == {credit.GROUP_CREDIT_ANALYSTS}

    completed = await rest("POST", f"{engine}/v2/user-tasks/{key}/completion", json={})
    assert completed.status_code == 204, completed.text

    async def instance_completed() -> EngineProcessInstance | None:
        async with sessions() as session:
            row = await session.get(EngineProcessInstance, instance)
        return row if row is not None and row.state == ProcessInstanceState.COMPLETED else None

    finished = await eventually(instance_completed, within=30)
    assert finished.started_at is not None and finished.ended_at is not None
    assert finished.started_at <= finished.ended_at
    assert finished.bpmn_process_id == PROCESS_ID

    # The instance's records and the task's are separate streams, applied in either order.
    async def task_completed() -> PanelTask | None:
        row = await task()
        return row if row is not None and row.state == TaskState.COMPLETED else None

    row = await eventually(task_completed, within=30)
    assert await groups_of(sessions, row) == set()


async def test_a_failing_service_task_becomes_an_incident_and_its_resolution_is_seen(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The status job of an instance whose case the panel does not know fails (a model
    error) until its retries (the model's default, 3) are used up."""
    engine = stack.settings.camunda_rest_url
    case_id = str(uuid.uuid4())
    started = await rest(
        "POST",
        f"{engine}/v2/process-instances",
        json={
            "processDefinitionId": credit.PROCESS_ID_CREDIT,
            "variables": {
                c.VAR_CASE_ID: case_id,
                c.VAR_PARTICIPANTS: [
                    {
                        c.KEY_PARTICIPANT_ID: str(uuid.uuid4()),
                        c.KEY_ROLE: credit.ROLE_PRIMARY_BORROWER,
                    }
                ],
            },
        },
    )
    assert started.status_code == 200, started.text
    instance = int(started.json()["processInstanceKey"])

    async def incidents() -> list[EngineIncident]:
        async with sessions() as session:
            rows = await session.scalars(
                select(EngineIncident)
                .where(EngineIncident.process_instance_key == instance)
                .order_by(EngineIncident.position)
            )
            return list(rows)

    (incident,) = await eventually(incidents, within=30)
    assert incident.state == IncidentState.ACTIVE
    assert incident.error_type == "JOB_NO_RETRIES"
    assert incident.element_id == "status-collecting"
    assert incident.job_key is not None
    assert f"Case {case_id} of job {incident.job_key} is not registered" in incident.error_message
    assert incident.root_process_instance_key == instance
    assert incident.created_at is not None and incident.resolved_at is None
    async with sessions() as session:
        assert await open_incident_counts(session, [instance]) == {instance: 1}

    async def running() -> EngineProcessInstance | None:
        async with sessions() as session:
            return await session.get(EngineProcessInstance, instance)

    state = await eventually(running, within=30)
    assert state.state == ProcessInstanceState.ACTIVE
    assert state.bpmn_process_id == credit.PROCESS_ID_CREDIT

    # Zeebe 8.6 refuses to resolve a job's incident while the job has no retries left.
    retries = await rest(
        "PATCH", f"{engine}/v2/jobs/{incident.job_key}", json={"changeset": {"retries": 1}}
    )
    assert retries.status_code == 204, retries.text
    resolved = await rest(
        "POST", f"{engine}/v2/incidents/{incident.incident_key}/resolution", json={}
    )
    assert resolved.status_code == 204, resolved.text

    async def first_resolved() -> EngineIncident | None:
        async with sessions() as session:
            row = await session.get(EngineIncident, incident.incident_key)
        return row if row is not None and row.state == IncidentState.RESOLVED else None

    row = await eventually(first_resolved, within=30)
    assert row.resolved_at is not None and row.created_at is not None
    assert row.resolved_at >= row.created_at

    # The job fails again on its one retry: a new incident. Cancelling the instance resolves
    # it, and the instance is kept as terminated.
    async def active() -> list[EngineIncident] | None:
        return [r for r in await incidents() if r.state == IncidentState.ACTIVE] or None

    (again,) = await eventually(active, within=30)
    assert again.incident_key != incident.incident_key
    assert again.job_key == incident.job_key
    cancelled = await rest(
        "POST", f"{engine}/v2/process-instances/{instance}/cancellation", json={}
    )
    assert cancelled.status_code == 204, cancelled.text

    async def terminated() -> EngineProcessInstance | None:
        async with sessions() as session:
            row = await session.get(EngineProcessInstance, instance)
        return row if row is not None and row.state == ProcessInstanceState.TERMINATED else None

    await eventually(terminated, within=30)

    async def all_resolved() -> list[EngineIncident] | None:
        rows = await incidents()
        return rows if rows and all(r.state == IncidentState.RESOLVED for r in rows) else None

    assert len(await eventually(all_resolved, within=30)) == 2
    async with sessions() as session:
        assert await open_incident_counts(session, [instance]) == {}
