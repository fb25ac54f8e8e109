"""The form a task is worked in: its own (pinned when the engine created it), or the variant
the case type's descriptor gives for the channel and the person's groups
(``panel_core/cases/variants.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases.case_types import Descriptor
from panel_core.cases.variants import Mode, choose
from panel_core.db.models import FormDefinition, PanelTask
from panel_core.forms.schema import variable_names
from panel_core.forms.submission import sent_names
from panel_core.variables import task_variables


@dataclass(frozen=True, slots=True)
class TaskForm:
    schema: dict[str, Any]
    form_id: str | None
    # The engine's key of the deployed form version.
    form_key: int | None
    # Whether it is a variant rather than the task's own form.
    variant: bool = False


def own_form(task: PanelTask) -> TaskForm:
    return TaskForm(task.form_schema or {}, task.form_id, task.form_key)


async def form_for(
    session: AsyncSession,
    task: PanelTask,
    descriptor: Descriptor,
    *,
    mode: Mode,
    groups: frozenset[str],
) -> TaskForm:
    """The form this task is worked in, in ``mode``, by a member of these groups.

    The variant is the newest deployed version of its form that sends the process what the
    task's pinned form sends; a task created before the case type changed both keeps its own
    form rather than a variant that would complete it differently.
    """
    own = own_form(task)
    variant = choose(descriptor.form_variants.get(task.element_id, ()), mode, groups)
    if variant is None or not task.form_schema:
        return own
    wanted = sent_names(task.form_schema)
    versions = await session.scalars(
        select(FormDefinition)
        .where(FormDefinition.form_id == variant.form)
        .order_by(FormDefinition.version.desc())
    )
    for version in versions:
        if not version.problems and sent_names(version.schema) == wanted:
            return TaskForm(version.schema, version.form_id, version.form_key, variant=True)
    return own


async def variables_for(session: AsyncSession, task: PanelTask, form: TaskForm) -> dict[str, Any]:
    """What the form may read of the task's process variables."""
    return await task_variables(session, task, variable_names(form.schema))
