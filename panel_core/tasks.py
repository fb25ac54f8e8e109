"""Panel tasks: Camunda user tasks as the panel shows them, kept in step with the engine."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.cases import Binding, bind_instance
from panel_core.completions import settle_by_engine_record
from panel_core.db.models import (
    Case,
    EngineTaskEnd,
    EngineVariable,
    FormDefinition,
    PanelTask,
    Participant,
    ProcessDefinition,
    TaskState,
    utcnow,
)
from panel_core.engine.records import (
    FormDeployed,
    NotYetKnownError,
    ProcessDeployed,
    UserTaskEvent,
    UserTaskValue,
)
from panel_core.feel import check_form

log = logging.getLogger(__name__)


class FormNotYetKnownError(NotYetKnownError):
    """A task refers to a form or process whose deployment record is not processed yet."""


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

    insert = _insert_for(session)
    statement = (
        insert(PanelTask)
        .values(
            id=uuid.uuid4(),
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
            form_id=form_id,
            form_key=form_key,
            form_schema=form_schema,
            due_date=event.due_date,
            follow_up_date=event.follow_up_date,
            priority=task.priority,
            state=state.value,
            created_at=utcnow(),
            closed_at=ended.ended_at if ended is not None else None,
        )
        .on_conflict_do_nothing(index_elements=["user_task_key"])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def record_task_closed(session: AsyncSession, user_task_key: int, state: TaskState) -> None:
    """Mark a task completed or withdrawn as the engine reports it; repeats are harmless.

    The end is remembered even when the task is not in the panel yet, and the task's
    submission follows the engine's word.
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
    await settle_by_engine_record(session, user_task_key, state)


async def apply_user_task(session: AsyncSession, event: UserTaskEvent) -> None:
    if event.intent == "CREATED":
        if not await record_task_created(session, event):
            log.info("user task %s already recorded", event.task.user_task_key)
    elif event.intent == "COMPLETED":
        await record_task_closed(session, event.task.user_task_key, TaskState.COMPLETED)
    elif event.intent == "CANCELED":
        await record_task_closed(session, event.task.user_task_key, TaskState.WITHDRAWN)


async def list_participant_tasks(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> list[PanelTask]:
    result = await session.execute(
        select(PanelTask)
        .where(PanelTask.case_id == case_id, PanelTask.participant_id == participant_id)
        .order_by(PanelTask.created_at, PanelTask.element_id)
    )
    return list(result.scalars())


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
