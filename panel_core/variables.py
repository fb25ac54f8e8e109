"""The process variables a participant's form reads, kept from the engine's records.

A form reads variables the way Tasklist gives them to form-js: every variable visible from
the user task, the innermost scope winning (the task's own, then each enclosing
sub-process or multi-instance iteration, then the process instance). Zeebe 8.6 has no API
for that without Operate's search, so the panel keeps what the exporter sends: the
variables, and the scopes of the elements they can be visible from. Both are deleted when
the process instance ends; only a marker that it ended stays. A form is given only the
names it refers to (field keys, ``valuesKey``, its expressions' variables), never the rest
of the case's data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.cases.service import bind_instance
from panel_core.db.models import EngineScope, EngineVariable, PanelTask
from panel_core.engine.records import ProcessInstanceEvent, VariableEvent
from panel_core.forms import variable_names

log = logging.getLogger(__name__)

# Elements whose instances are scopes a user task's variables can come from.
SCOPE_ELEMENT_TYPES = frozenset(
    {
        "USER_TASK",
        "SUB_PROCESS",
        "EVENT_SUB_PROCESS",
        "AD_HOC_SUB_PROCESS",
        "MULTI_INSTANCE_BODY",
    }
)
ENDED = frozenset({"ELEMENT_COMPLETED", "ELEMENT_TERMINATED"})
# Nested deeper than this, a scope chain is taken to be broken rather than followed on.
MAX_SCOPE_DEPTH = 64


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def record_variable(session: AsyncSession, variable: VariableEvent) -> None:
    """Keep a variable's latest value; a record seen again never undoes a newer one, nor
    brings back the data of a process instance that has ended.

    An instance's own ``caseId`` tells the panel which case it runs, whatever else reported
    that first (see ``bind_instance``).
    """
    ended = await session.scalar(
        select(EngineScope.ended).where(
            EngineScope.element_instance_key == variable.process_instance_key
        )
    )
    if ended:
        return
    if (
        variable.name == c.VAR_CASE_ID
        and variable.scope_key == variable.process_instance_key
        and isinstance(variable.value, str)
    ):
        try:
            case_id = uuid.UUID(variable.value)
        except ValueError:
            log.warning("process instance %s has a caseId that is no id", variable.scope_key)
        else:
            await bind_instance(
                session, case_id, variable.process_instance_key, variable.bpmn_process_id
            )
    insert = _insert_for(session)
    statement = insert(EngineVariable).values(
        scope_key=variable.scope_key,
        name=variable.name,
        process_instance_key=variable.process_instance_key,
        value=variable.value,
        position=variable.position,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["scope_key", "name"],
            set_={"value": statement.excluded.value, "position": statement.excluded.position},
            where=EngineVariable.position < statement.excluded.position,
        )
    )


async def record_process_instance(session: AsyncSession, record: ProcessInstanceEvent) -> None:
    """Remember where scopes sit; forget a process instance's data when it ends."""
    value = record.value
    key = value.process_instance_key
    insert = _insert_for(session)
    if value.bpmn_element_type == "PROCESS" and record.intent in ENDED:
        await session.execute(
            delete(EngineVariable).where(EngineVariable.process_instance_key == key)
        )
        await session.execute(
            delete(EngineScope).where(
                EngineScope.process_instance_key == key, EngineScope.element_instance_key != key
            )
        )
        statement = insert(EngineScope).values(
            element_instance_key=key, flow_scope_key=-1, process_instance_key=key, ended=True
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["element_instance_key"], set_={"ended": True}
            )
        )
        return
    if value.bpmn_element_type in SCOPE_ELEMENT_TYPES and record.intent == "ELEMENT_ACTIVATING":
        ended = await session.scalar(
            select(EngineScope.ended).where(EngineScope.element_instance_key == key)
        )
        if ended:
            return
        await session.execute(
            insert(EngineScope)
            .values(
                element_instance_key=record.key,
                flow_scope_key=value.flow_scope_key,
                process_instance_key=key,
                ended=False,
            )
            .on_conflict_do_nothing(index_elements=["element_instance_key"])
        )


async def scope_chain(session: AsyncSession, task: PanelTask) -> list[int]:
    """The task's scopes from the innermost (its own) to the process instance."""
    chain = [task.element_instance_key]
    current = task.element_instance_key
    while current != task.process_instance_key and len(chain) < MAX_SCOPE_DEPTH:
        parent = await session.scalar(
            select(EngineScope.flow_scope_key).where(EngineScope.element_instance_key == current)
        )
        if parent is None:
            break
        chain.append(parent)
        current = parent
    if chain[-1] != task.process_instance_key:
        chain.append(task.process_instance_key)
    return chain


async def task_variables(
    session: AsyncSession, task: PanelTask, names: Collection[str]
) -> dict[str, Any]:
    """The variables of these names as the task sees them, innermost scope first."""
    if not names:
        return {}
    chain = await scope_chain(session, task)
    rows = (
        await session.execute(
            select(EngineVariable.scope_key, EngineVariable.name, EngineVariable.value).where(
                EngineVariable.scope_key.in_(chain), EngineVariable.name.in_(list(names))
            )
        )
    ).all()
    depth = {scope: index for index, scope in enumerate(chain)}
    found: dict[str, tuple[int, Any]] = {}
    for scope, name, value in rows:
        if name not in found or depth[scope] < found[name][0]:
            found[name] = (depth[scope], value)
    return {name: value for name, (_depth, value) in found.items()}


async def form_variables(session: AsyncSession, task: PanelTask) -> dict[str, Any]:
    """What the task's pinned form may read of its process's variables."""
    return await task_variables(session, task, variable_names(task.form_schema or {}))
