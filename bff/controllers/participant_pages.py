"""Server-rendered pages of the participant panel; they work without JavaScript."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext, provide_participant
from bff.services.task_completion import client_of, complete_participant_task
from panel_core.consents import consent_texts, text_version
from panel_core.db.models import TaskState
from panel_core.drafts import load_draft, save_draft
from panel_core.forms import page_components
from panel_core.tasks import get_participant_task, list_participant_tasks

NOT_FOUND = "Not found"
DISPLAY_ZONE = ZoneInfo("Europe/Warsaw")


def consent_versions(schema: dict[str, Any]) -> dict[str, str]:
    return {key: text_version(text) for key, text in consent_texts(schema).items()}


def session_context(
    request: Request[Any, Any, State], participant: ParticipantContext
) -> dict[str, Any]:
    """What the page says about when the session ends, so nobody is signed out unawares."""
    ends = datetime.fromtimestamp(participant.expires_at, tz=DISPLAY_ZONE)
    settings = request.app.state.settings
    return {
        "idle_minutes": settings.session_idle_timeout_seconds // 60,
        "ends_at": ends.strftime("%H:%M"),
        "expires_at": int(participant.expires_at),
        "warning_seconds": settings.session_warning_seconds,
    }


class ParticipantPagesController(Controller):
    path = "/tasks"
    include_in_schema = False
    dependencies = {"participant": Provide(provide_participant, sync_to_thread=False)}  # noqa: RUF012

    @get("/")
    async def task_list(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template:
        tasks = await list_participant_tasks(db, participant.case_id, participant.participant_id)
        return Template(
            "tasks.html.j2",
            context={
                "open_tasks": [t for t in tasks if t.state == TaskState.OPEN],
                "submitted_tasks": [t for t in tasks if t.state == TaskState.SUBMITTED],
                "done_tasks": [t for t in tasks if t.state == TaskState.COMPLETED],
                "withdrawn_tasks": [t for t in tasks if t.state == TaskState.WITHDRAWN],
                "participant_session": session_context(request, participant),
            },
        )

    @get("/{task_id:uuid}")
    async def task_form(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
        saved: FromQuery[str] = "",
    ) -> Template:
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        if task is None:
            raise NotFoundException(NOT_FOUND)
        return Template(
            "task.html.j2",
            context={
                "task": task,
                "fields": page_components(task.form_schema or {}),
                "consent_versions": consent_versions(task.form_schema or {}),
                "values": await load_draft(db, task),
                "saved": saved == "1",
                "errors": {},
                "participant_session": session_context(request, participant),
            },
        )

    @post("/{task_id:uuid}")
    async def submit_task(
        self,
        request: Request[object, object, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Template | Redirect:
        submitted = {k: v for k, v in data.items() if k not in {"_csrf_token", "action"}}
        if data.get("action") == "save":
            task = await get_participant_task(
                db, participant.case_id, participant.participant_id, task_id
            )
            if task is None or task.state != TaskState.OPEN:
                raise NotFoundException(NOT_FOUND)
            await save_draft(db, task, participant.participant_id, submitted)
            await db.commit()
            return Redirect(path=f"/tasks/{task_id}?saved=1", status_code=303)
        outcome = await complete_participant_task(
            request.app.state, db, participant, task_id, submitted, client_of(request)
        )
        if outcome.not_found:
            raise NotFoundException(NOT_FOUND)
        if outcome.errors:
            task = await get_participant_task(
                db, participant.case_id, participant.participant_id, task_id
            )
            assert task is not None
            return Template(
                "task.html.j2",
                context={
                    "task": task,
                    "fields": page_components(task.form_schema or {}),
                    "consent_versions": consent_versions(task.form_schema or {}),
                    "values": submitted,
                    "errors": outcome.errors,
                    "participant_session": session_context(request, participant),
                },
                status_code=400,
            )
        return Redirect(path="/tasks/", status_code=303)
