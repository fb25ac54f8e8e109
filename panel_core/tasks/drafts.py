"""Drafts: a participant's or a member of staff's unsent answers, saved on the server and
restored anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import PanelTask, TaskDraft, utcnow
from panel_core.forms import submitted_fields
from panel_core.identity.actors import Actor, ParticipantActor, StaffActor

MAX_VALUE_LENGTH = 10_000


def _keep(schema: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """Only the form's own page fields (rows of lists, time parts and row counts included),
    as text or lists of text, each of a sane length."""
    kept: dict[str, Any] = {}
    for key, value in submitted_fields(schema, answers).items():
        if isinstance(value, list):
            kept[key] = [str(item)[:MAX_VALUE_LENGTH] for item in value]
        elif isinstance(value, bool | int | float | str):
            kept[key] = str(value)[:MAX_VALUE_LENGTH] if isinstance(value, str) else value
    return kept


async def save_draft(
    session: AsyncSession, task: PanelTask, owner: Actor, answers: Mapping[str, Any]
) -> None:
    """Store the answers as typed; the caller has checked the actor may work on the task."""
    values = _keep(task.form_schema or {}, answers)
    participant_id = owner.participant_id if isinstance(owner, ParticipantActor) else None
    staff_username = owner.username if isinstance(owner, StaffActor) else None
    draft = await session.get(TaskDraft, task.id)
    if draft is None:
        session.add(
            TaskDraft(
                panel_task_id=task.id,
                participant_id=participant_id,
                staff_username=staff_username,
                answers=values,
            )
        )
    else:
        draft.answers = values
        draft.participant_id = participant_id
        draft.staff_username = staff_username
        draft.updated_at = utcnow()


async def load_draft(
    session: AsyncSession, task: PanelTask, owner: Actor | None = None
) -> dict[str, Any]:
    """The task's draft; for a member of staff only their own (a task handed on starts
    afresh: the next person answers for themselves)."""
    draft = await session.get(TaskDraft, task.id)
    if draft is None:
        return {}
    if isinstance(owner, StaffActor) and draft.staff_username != owner.username:
        return {}
    return dict(draft.answers)


async def discard_draft(session: AsyncSession, task: PanelTask) -> None:
    await session.execute(delete(TaskDraft).where(TaskDraft.panel_task_id == task.id))
