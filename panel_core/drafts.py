"""Drafts: a participant's unsent answers, saved on the server and restored anywhere."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import PanelTask, TaskDraft, utcnow
from panel_core.forms import submitted_fields

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
    session: AsyncSession, task: PanelTask, participant_id: uuid.UUID, answers: Mapping[str, Any]
) -> None:
    """Store the answers as typed; the caller has checked the task belongs to the participant."""
    values = _keep(task.form_schema or {}, answers)
    draft = await session.get(TaskDraft, task.id)
    if draft is None:
        session.add(TaskDraft(panel_task_id=task.id, participant_id=participant_id, answers=values))
    else:
        draft.answers = values
        draft.updated_at = utcnow()


async def load_draft(session: AsyncSession, task: PanelTask) -> dict[str, Any]:
    draft = await session.get(TaskDraft, task.id)
    return dict(draft.answers) if draft is not None else {}


async def discard_draft(session: AsyncSession, task: PanelTask) -> None:
    await session.execute(delete(TaskDraft).where(TaskDraft.panel_task_id == task.id))
