"""Panel tasks: Camunda user tasks as the panel shows them, kept in step with the engine."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.cases.service import Binding, bind_instance
from panel_core.db.models import (
    Case,
    EngineTaskEnd,
    EngineVariable,
    FormDefinition,
    PanelTask,
    PanelTaskCandidateGroup,
    Participant,
    ProcessDefinition,
    TaskState,
    utcnow,
)
from panel_core.engine.records import (
    ASSIGNEE,
    CANDIDATE_GROUPS,
    CANDIDATE_USERS,
    DUE_DATE,
    ELEMENT,
    FOLLOW_UP_DATE,
    PRIORITY,
    FormDeployed,
    NotYetKnownError,
    ProcessDeployed,
    UserTaskEvent,
    UserTaskValue,
)
from panel_core.forms.checks import check_form
from panel_core.tasks.completions import settle_by_engine_record

log = logging.getLogger(__name__)


class FormNotYetKnownError(NotYetKnownError):
    """A task refers to a form or process whose deployment record is not processed yet."""


class TaskNotYetKnownError(NotYetKnownError):
    """A record changes a user task whose CREATED is not applied yet (it waits for its form)."""


# The engine ends a task with COMPLETED or CANCELED; until then it may still be taken.
NOT_ENDED = (TaskState.OPEN, TaskState.SUBMITTED)


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def record_form(session: AsyncSession, form: FormDeployed) -> None:
    """Remember a deployed form version; the same deployment seen twice changes nothing."""
    insert = _insert_for(session)
    problems = check_form(form.schema)
    if problems:
        log.error(
            "form %s version %s cannot be served by the panel; its tasks will be held: %s",
            form.form_id,
            form.version,
            "; ".join(problems),
        )
    statement = insert(FormDefinition).values(
        form_key=form.form_key,
        form_id=form.form_id,
        version=form.version,
        schema=form.schema,
        problems=problems,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["form_key"]))


async def record_process(session: AsyncSession, process: ProcessDeployed) -> None:
    insert = _insert_for(session)
    statement = insert(ProcessDefinition).values(
        process_definition_key=process.process_definition_key,
        bpmn_process_id=process.bpmn_process_id,
        version=process.version,
        element_names=process.element_names,
    )
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["process_definition_key"])
    )


def _parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _case_of(
    session: AsyncSession, task: UserTaskValue
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The case and participant a user task belongs to, if any.

    A participant's task names them as its assignee, which also names the case: so the task
    finds its case even before the engine's answer to the start reached the panel. A staff
    task finds it by its process instance, or by the instance's ``caseId`` variable (a call
    activity's child instance carries it too).
    """
    assignee_id = _parse_uuid(task.assignee) if task.assignee else None
    participant = None
    if assignee_id is not None:
        participant = (
            await session.execute(
                select(Participant.id, Participant.case_id).where(Participant.id == assignee_id)
            )
        ).one_or_none()
    if participant is not None:
        case_id: uuid.UUID | None = participant.case_id
    else:
        case_id = await session.scalar(
            select(Case.id).where(Case.process_instance_key == task.process_instance_key)
        )
        if case_id is None:
            value = await session.scalar(
                select(EngineVariable.value).where(
                    EngineVariable.scope_key == task.process_instance_key,
                    EngineVariable.name == c.VAR_CASE_ID,
                )
            )
            case_id = _parse_uuid(value) if value is not None else None
    if case_id is None:
        return None, None
    binding = await bind_instance(session, case_id, task.process_instance_key, task.bpmn_process_id)
    if binding in {Binding.DUPLICATE, Binding.UNKNOWN_CASE}:
        # A second instance of the case, being cancelled: its tasks are nobody's.
        return None, None
    return case_id, participant.id if participant is not None else None


async def record_task_created(session: AsyncSession, event: UserTaskEvent) -> bool:
    """Create the panel task for a user task the engine created.

    Returns False when the task was already recorded: the engine's records reach us at least
    once, so a second delivery must leave exactly one row. A task whose end was recorded
    first (its CANCELED or COMPLETED overtook this record) is recorded as ended.
    """
    task = event.task
    form_schema: dict[str, Any] | None = None
    form_id: str | None = None
    form_key = task.form_key if task.form_key > 0 else None
    if form_key is not None:
        form = await session.get(FormDefinition, form_key)
        if form is None:
            raise FormNotYetKnownError(f"form {form_key}")
        form_schema, form_id = form.schema, form.form_id

    definition = await session.get(ProcessDefinition, task.process_definition_key)
    if definition is None:
        raise FormNotYetKnownError(f"process definition {task.process_definition_key}")
    name = str(definition.element_names.get(task.element_id, task.element_id))

    case_id, participant_id = await _case_of(session, task)
    ended = await session.get(EngineTaskEnd, task.user_task_key)
    state = TaskState(ended.state) if ended is not None else TaskState.OPEN

    task_id = uuid.uuid4()
    insert = _insert_for(session)
    statement = (
        insert(PanelTask)
        .values(
            id=task_id,
            user_task_key=task.user_task_key,
            process_instance_key=task.process_instance_key,
            element_instance_key=task.element_instance_key,
            bpmn_process_id=task.bpmn_process_id,
            element_id=task.element_id,
            name=name,
            case_id=case_id,
            participant_id=participant_id,
            assignee=task.assignee or None,
            candidate_groups=list(task.candidate_groups_list),
            candidate_users=list(task.candidate_users_list),
            form_id=form_id,
            form_key=form_key,
            form_schema=form_schema,
            due_date=event.due_date,
            follow_up_date=event.follow_up_date,
            priority=task.priority,
            state=state.value,
            created_at=utcnow(),
            closed_at=ended.ended_at if ended is not None else None,
            engine_position=event.position,
            engine_attribute_positions={},
        )
        .on_conflict_do_nothing(index_elements=["user_task_key"])
    )
    result = await session.execute(statement)
    if not getattr(result, "rowcount", 0):
        return False
    if state in NOT_ENDED:
        await _set_candidate_groups(session, task_id, task.candidate_groups_list)
    return True


async def _set_candidate_groups(
    session: AsyncSession, task_id: uuid.UUID, groups: Iterable[str]
) -> None:
    await session.execute(
        delete(PanelTaskCandidateGroup).where(PanelTaskCandidateGroup.panel_task_id == task_id)
    )
    rows = [{"group": group, "panel_task_id": task_id} for group in sorted(set(groups) - {""})]
    if rows:
        await session.execute(_insert_for(session)(PanelTaskCandidateGroup), rows)


async def record_task_changed(session: AsyncSession, event: UserTaskEvent) -> None:
    """Apply what an ASSIGNED, UPDATED or MIGRATED record changes, and nothing else.

    Each attribute the record changes takes its value only if no newer record set it
    already, so a record delivered again or late neither undoes a newer change nor, when a
    newer record changed other attributes first, is lost. An assignment never changes whose
    task it is: a participant's task was given its participant when it was recorded, and a
    staff task assigned to a member of staff is not looked for among the participants.
    """
    task = event.task
    row = await session.scalar(
        select(PanelTask).where(PanelTask.user_task_key == task.user_task_key).with_for_update()
    )
    if row is None:
        raise TaskNotYetKnownError(f"user task {task.user_task_key}")
    positions = dict(row.engine_attribute_positions)
    due = {name for name in event.changed if positions.get(name, -1) < event.position}
    if ELEMENT in due:
        definition = await session.get(ProcessDefinition, task.process_definition_key)
        if definition is None:
            raise FormNotYetKnownError(f"process definition {task.process_definition_key}")
        row.bpmn_process_id = task.bpmn_process_id
        row.element_id = task.element_id
        row.name = str(definition.element_names.get(task.element_id, task.element_id))
    if ASSIGNEE in due:
        row.assignee = task.assignee or None
    if CANDIDATE_GROUPS in due:
        row.candidate_groups = list(task.candidate_groups_list)
    if CANDIDATE_USERS in due:
        row.candidate_users = list(task.candidate_users_list)
    if DUE_DATE in due:
        row.due_date = event.due_date
    if FOLLOW_UP_DATE in due:
        row.follow_up_date = event.follow_up_date
    if PRIORITY in due:
        row.priority = task.priority
    if CANDIDATE_GROUPS in due and row.state in NOT_ENDED:
        await _set_candidate_groups(session, row.id, task.candidate_groups_list)
    row.engine_attribute_positions = positions | dict.fromkeys(due, event.position)
    row.engine_position = max(row.engine_position, event.position)


async def record_task_closed(
    session: AsyncSession, user_task_key: int, state: TaskState, position: int = 0
) -> None:
    """Mark a task completed or withdrawn as the engine reports it; repeats are harmless.

    The end is remembered even when the task is not in the panel yet, and the task's
    submission follows the engine's word. An ended task leaves the inboxes.
    """
    insert = _insert_for(session)
    await session.execute(
        insert(EngineTaskEnd)
        .values(user_task_key=user_task_key, state=state.value, ended_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_task_key"])
    )
    await session.execute(
        update(PanelTask)
        .where(
            PanelTask.user_task_key == user_task_key,
            PanelTask.state.in_([TaskState.OPEN, TaskState.SUBMITTED]),
        )
        .values(state=state, closed_at=utcnow())
    )
    await session.execute(
        update(PanelTask)
        .where(PanelTask.user_task_key == user_task_key, PanelTask.engine_position < position)
        .values(engine_position=position)
    )
    await session.execute(
        delete(PanelTaskCandidateGroup).where(
            PanelTaskCandidateGroup.panel_task_id.in_(
                select(PanelTask.id).where(PanelTask.user_task_key == user_task_key)
            )
        )
    )
    await settle_by_engine_record(session, user_task_key, state)


async def apply_user_task(session: AsyncSession, event: UserTaskEvent) -> None:
    """Apply a USER_TASK record of Zeebe 8.6.

    CREATING, ASSIGNING, UPDATING, COMPLETING and CANCELING change nothing: without task
    listeners (8.7+) the engine writes each in the same step as the record that completes
    it, and that one carries the same task.
    """
    key = event.task.user_task_key
    if event.intent == "CREATED":
        if not await record_task_created(session, event):
            log.info("user task %s already recorded", key)
    elif event.intent in {"ASSIGNED", "UPDATED", "MIGRATED"}:
        await record_task_changed(session, event)
    elif event.intent == "COMPLETED":
        await record_task_closed(session, key, TaskState.COMPLETED, event.position)
    elif event.intent == "CANCELED":
        await record_task_closed(session, key, TaskState.WITHDRAWN, event.position)


async def list_participant_tasks(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> list[PanelTask]:
    result = await session.execute(
        select(PanelTask)
        .where(PanelTask.case_id == case_id, PanelTask.participant_id == participant_id)
        .order_by(PanelTask.created_at, PanelTask.element_id)
    )
    return list(result.scalars())


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """What a participant's task list shows of a task."""

    id: uuid.UUID
    name: str
    element_id: str
    state: TaskState
    form_id: str | None
    due_date: datetime | None
    priority: int
    created_at: datetime


async def list_participant_task_summaries(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> list[TaskSummary]:
    """:func:`list_participant_tasks` without the pinned form schemas and engine bookkeeping:
    what a task list shows (a few kilobytes of JSON less to decode per task)."""
    result = await session.execute(
        select(
            PanelTask.id,
            PanelTask.name,
            PanelTask.element_id,
            PanelTask.state,
            PanelTask.form_id,
            PanelTask.due_date,
            PanelTask.priority,
            PanelTask.created_at,
        )
        .where(PanelTask.case_id == case_id, PanelTask.participant_id == participant_id)
        .order_by(PanelTask.created_at, PanelTask.element_id)
    )
    return [TaskSummary(*row) for row in result.all()]


async def get_participant_task(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID, task_id: uuid.UUID
) -> PanelTask | None:
    """The task only if it belongs to this participant of this case; None otherwise."""
    result = await session.execute(
        select(PanelTask).where(
            PanelTask.id == task_id,
            PanelTask.case_id == case_id,
            PanelTask.participant_id == participant_id,
        )
    )
    return result.scalar_one_or_none()
