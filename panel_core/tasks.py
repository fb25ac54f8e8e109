"""Panel tasks: Camunda user tasks as the panel shows them, kept in step with the engine."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import (
    Case,
    FormDefinition,
    PanelTask,
    Participant,
    ProcessDefinition,
    TaskState,
    utcnow,
)
from panel_core.engine.records import (
    FormValue,
    ProcessValue,
    UserTaskValue,
    parse_engine_datetime,
)
from panel_core.feel import check_form

log = logging.getLogger(__name__)
_BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


class FormNotYetKnownError(LookupError):
    """A task refers to a form or process whose deployment record is not processed yet."""


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def record_form(session: AsyncSession, form: FormValue) -> None:
    """Remember a deployed form version; the same deployment seen twice changes nothing."""
    insert = _insert_for(session)
    schema = form.schema()
    problems = check_form(schema)
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
        schema=schema,
        problems=problems,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["form_key"]))


def element_names(bpmn_xml: bytes) -> dict[str, str]:
    """Names of the flow elements of a BPMN document, by element id."""
    # The document was accepted by the engine, which parses it without external entities;
    # ElementTree does not resolve them either.
    root = ElementTree.fromstring(bpmn_xml)  # noqa: S314
    names: dict[str, str] = {}
    for element in root.iter():
        element_id, name = element.get("id"), element.get("name")
        if element_id and name and element.tag.startswith(_BPMN_NS):
            names[element_id] = " ".join(name.split())
    return names


async def record_process(session: AsyncSession, process: ProcessValue) -> None:
    insert = _insert_for(session)
    statement = insert(ProcessDefinition).values(
        process_definition_key=process.process_definition_key,
        bpmn_process_id=process.bpmn_process_id,
        version=process.version,
        element_names=element_names(process.bpmn_xml()),
    )
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["process_definition_key"])
    )


def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def record_task_created(session: AsyncSession, task: UserTaskValue) -> bool:
    """Create the panel task for a user task the engine created.

    Returns False when the task was already recorded: the engine's records reach us at least
    once, so a second delivery must leave exactly one row.
    """
    form_schema: dict[str, Any] | None = None
    form_id: str | None = None
    form_key = task.form_key if task.form_key > 0 else None
    if form_key is not None:
        form = await session.get(FormDefinition, form_key)
        if form is None:
            raise FormNotYetKnownError(form_key)
        form_schema, form_id = form.schema, form.form_id

    definition = await session.get(ProcessDefinition, task.process_definition_key)
    if definition is None:
        raise FormNotYetKnownError(task.process_definition_key)
    name = str(definition.element_names.get(task.element_id, task.element_id))

    case_id = participant_id = None
    case = (
        await session.execute(
            select(Case.id).where(Case.process_instance_key == task.process_instance_key)
        )
    ).scalar_one_or_none()
    if case is not None:
        case_id = case
        assignee_id = _parse_uuid(task.assignee) if task.assignee else None
        if assignee_id is not None:
            participant_id = (
                await session.execute(
                    select(Participant.id).where(
                        Participant.id == assignee_id, Participant.case_id == case_id
                    )
                )
            ).scalar_one_or_none()

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
            due_date=parse_engine_datetime(task.due_date),
            follow_up_date=parse_engine_datetime(task.follow_up_date),
            priority=task.priority,
            state=TaskState.OPEN.value,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["user_task_key"])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def record_task_closed(session: AsyncSession, user_task_key: int, state: TaskState) -> None:
    """Mark a task completed or withdrawn as the engine reports it; repeats are harmless."""
    await session.execute(
        update(PanelTask)
        .where(
            PanelTask.user_task_key == user_task_key,
            PanelTask.state.in_([TaskState.OPEN, TaskState.SUBMITTED]),
        )
        .values(state=state, closed_at=utcnow())
    )


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
