"""Process instances and incidents as the engine reports them, for the staff's case pages and
failed steps, so that the panel never needs Operate.

Both tables are kept after the instance ends. Records arrive at least once and, across
consumers, out of order, so every record is merged into its row rather than replayed onto
it: an ended instance or a resolved incident stays so whatever record comes later, a time
once known is kept, and the descriptive columns (which a migration changes) follow the
newest record by log position.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import (
    EngineIncident,
    EngineProcessInstance,
    IncidentState,
    ProcessInstanceState,
)
from panel_core.engine.records import IncidentEvent, ProcessInstanceEvent

# The records of a process instance's own element that move its state.
INSTANCE_STATES = {
    "ELEMENT_ACTIVATING": ProcessInstanceState.ACTIVE,
    "ELEMENT_ACTIVATED": ProcessInstanceState.ACTIVE,
    "ELEMENT_MIGRATED": ProcessInstanceState.ACTIVE,
    "ELEMENT_COMPLETED": ProcessInstanceState.COMPLETED,
    "ELEMENT_TERMINATED": ProcessInstanceState.TERMINATED,
}
STARTING = frozenset({"ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"})
INCIDENT_STATES = {
    "CREATED": IncidentState.ACTIVE,
    "MIGRATED": IncidentState.ACTIVE,
    "RESOLVED": IncidentState.RESOLVED,
}


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


def _key_or_none(key: int) -> int | None:
    # The engine writes -1 for a key that does not apply.
    return key if key > 0 else None


def _newest(excluded: Any, current: Any, columns: Collection[str]) -> dict[str, ColumnElement[Any]]:
    """Each column takes the record's value only if the record is newer than the row's."""
    newer = excluded.position > current.position
    return {
        name: case((newer, getattr(excluded, name)), else_=getattr(current, name))
        for name in (*columns, "position")
    }


async def record_instance_state(session: AsyncSession, record: ProcessInstanceEvent) -> None:
    """Keep a process instance's state, from the records of its own (PROCESS) element."""
    value = record.value
    state = INSTANCE_STATES.get(record.intent)
    if value.bpmn_element_type != "PROCESS" or state is None:
        return
    key = value.process_instance_key
    parent = _key_or_none(value.parent_process_instance_key)
    root = key
    if parent is not None:
        # The parent's records come first in the same stream: its row is there, unless the
        # stream lost them, and then the parent is the best root there is.
        parent_root = await session.scalar(
            select(EngineProcessInstance.root_process_instance_key).where(
                EngineProcessInstance.process_instance_key == parent
            )
        )
        root = parent_root if parent_root is not None else parent
    started: datetime | None = record.timestamp if record.intent in STARTING else None
    ended: datetime | None = None if state is ProcessInstanceState.ACTIVE else record.timestamp
    statement = _insert_for(session)(EngineProcessInstance).values(
        process_instance_key=key,
        bpmn_process_id=value.bpmn_process_id,
        process_definition_key=value.process_definition_key,
        version=value.version,
        parent_process_instance_key=parent,
        parent_element_instance_key=_key_or_none(value.parent_element_instance_key),
        root_process_instance_key=root,
        state=state,
        started_at=started,
        ended_at=ended,
        position=record.position,
    )
    row, excluded = EngineProcessInstance, statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["process_instance_key"],
            set_={
                # Active is the only state an instance leaves, and it never comes back.
                "state": case(
                    (row.state == ProcessInstanceState.ACTIVE, excluded.state), else_=row.state
                ),
                "started_at": func.coalesce(row.started_at, excluded.started_at),
                "ended_at": func.coalesce(row.ended_at, excluded.ended_at),
                **_newest(excluded, row, ("bpmn_process_id", "process_definition_key", "version")),
            },
        )
    )


async def record_incident(session: AsyncSession, record: IncidentEvent) -> None:
    """Keep an incident; its resolution wins over any record applied after it."""
    state = INCIDENT_STATES[record.intent]
    incident = record.incident
    resolved = state is IncidentState.RESOLVED
    root = record.root_process_instance_key
    if not incident.element_instance_path:
        # 8.6 writes the path; a record without it (another engine version, or written by
        # hand) finds its root through its instance's row.
        known = await session.scalar(
            select(EngineProcessInstance.root_process_instance_key).where(
                EngineProcessInstance.process_instance_key == incident.process_instance_key
            )
        )
        root = known if known is not None else root
    statement = _insert_for(session)(EngineIncident).values(
        incident_key=record.incident_key,
        process_instance_key=incident.process_instance_key,
        root_process_instance_key=root,
        bpmn_process_id=incident.bpmn_process_id,
        process_definition_key=incident.process_definition_key,
        element_id=incident.element_id,
        element_instance_key=incident.element_instance_key,
        job_key=_key_or_none(incident.job_key),
        error_type=incident.error_type,
        error_message=incident.error_message,
        state=state,
        created_at=record.timestamp if record.intent == "CREATED" else None,
        resolved_at=record.timestamp if resolved else None,
        position=record.position,
    )
    row, excluded = EngineIncident, statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["incident_key"],
            set_={
                "state": case(
                    (row.state == IncidentState.RESOLVED, row.state), else_=excluded.state
                ),
                "created_at": func.coalesce(row.created_at, excluded.created_at),
                "resolved_at": func.coalesce(row.resolved_at, excluded.resolved_at),
                **_newest(
                    excluded,
                    row,
                    (
                        "process_instance_key",
                        "root_process_instance_key",
                        "bpmn_process_id",
                        "process_definition_key",
                        "element_id",
                        "element_instance_key",
                        "job_key",
                        "error_type",
                        "error_message",
                    ),
                ),
            },
        )
    )


async def open_incident_counts(
    session: AsyncSession, root_process_instance_keys: Collection[int]
) -> dict[int, int]:
    """How many incidents are open under each of these root instances, their call
    activities' children included; a root without any is left out."""
    if not root_process_instance_keys:
        return {}
    rows = await session.execute(
        select(EngineIncident.root_process_instance_key, func.count())
        .where(
            EngineIncident.root_process_instance_key.in_(list(root_process_instance_keys)),
            EngineIncident.state == IncidentState.ACTIVE,
        )
        .group_by(EngineIncident.root_process_instance_key)
    )
    return {root: count for root, count in rows}
