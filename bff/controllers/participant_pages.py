"""Server-rendered pages of the participant panel; they work without JavaScript."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext, ParticipantController
from bff.services.signing import signing_context
from bff.services.task_completion import complete_participant_task
from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.db.models import PanelTask, SubmissionState, TaskState
from panel_core.documents.service import (
    get_participant_document,
    remove_document,
    task_documents,
)
from panel_core.forms import (
    apply_list_action,
    form_today,
    hidden_now,
    list_action,
    localise,
    page_fields,
)
from panel_core.forms.checks import check_form
from panel_core.identity.actors import ParticipantActor
from panel_core.tasks.completions import latest_submission
from panel_core.tasks.consents import consent_texts, text_version
from panel_core.tasks.drafts import load_draft, save_draft
from panel_core.tasks.service import get_participant_task, list_participant_tasks
from panel_core.tasks.signing import signature_components
from panel_core.variables import form_variables
from panel_web.forms import form_values
from panel_web.multipart import EXCLUDE_FROM_CSRF, read_form
from panel_web.request import client_of
from panel_web.uploads import UploadSaver, filepickers

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
        # What of a closed case they still reach: the navigation offers no more.
        "shows": participant.shows,
    }


class ParticipantPagesController(ParticipantController):
    path = "/tasks"
    include_in_schema = False

    @get("/")
    async def task_list(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template:
        tasks = await list_participant_tasks(db, participant.case_id, participant.participant_id)
        descriptor = await case_types.of_case_id(db, participant.case_id)
        return Template(
            "tasks.html.j2",
            context={
                "task_name": lambda task: descriptor.task_name(task.element_id, task.name),
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
        code: FromQuery[str] = "",
    ) -> Template:
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        if task is None:
            raise NotFoundException(NOT_FOUND)
        return await task_page(
            request,
            db,
            participant,
            task,
            values=await load_draft(db, task),
            errors={},
            saved=saved == "1",
            code=code,
        )

    @post("/{task_id:uuid}/conditions", status_code=200)
    async def conditions(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> dict[str, list[str]]:
        """Which of the page's conditional components its current values hide, judged by
        the same code that judges the page when it is sent (for static/js/conditions.js)."""
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        if task is None:
            raise NotFoundException(NOT_FOUND)
        values = form_values(await request.form())
        values.pop("action", None)
        hidden = hidden_now(
            task.form_schema or {},
            values,
            await form_variables(db, task),
            form_today(request.app.state.clock),
        )
        return {"hidden": hidden}

    # The body is read as it streams (files straight to storage); the token is checked there.
    @post("/{task_id:uuid}", opt=EXCLUDE_FROM_CSRF)
    async def submit_task(
        self,
        request: Request[object, object, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        state = request.app.state
        # Files are kept whatever else is wrong on the page, so nobody uploads twice.
        uploads = UploadSaver(state, db, task, participant.participant_id, client_of(request))
        form = await read_form(request, uploads)
        submitted = form_values(form)
        action = str(submitted.pop("action", ""))
        if task is None:
            raise NotFoundException(NOT_FOUND)
        errors = uploads.errors
        if task.state == TaskState.OPEN:
            if action.startswith("remove-document:"):
                await remove_participant_document(
                    state, db, participant, task, action.partition(":")[2]
                )
            await db.commit()
        if list_action(action):
            # A dynamic list's "Add another" or "Remove": the same page, one row more or less.
            if task.state != TaskState.OPEN:
                raise NotFoundException(NOT_FOUND)
            values = apply_list_action(task.form_schema or {}, submitted, action)
            return await task_page(
                request,
                db,
                participant,
                task,
                values=values,
                errors=errors,
                status=400 if errors else 200,
            )
        if action == "save" or action == "upload" or action.startswith("remove-document:"):
            if task.state != TaskState.OPEN:
                raise NotFoundException(NOT_FOUND)
            await save_draft(
                db,
                task,
                ParticipantActor(participant.case_id, participant.participant_id),
                submitted,
            )
            await db.commit()
            if errors:
                return await task_page(
                    request, db, participant, task, values=submitted, errors=errors, status=400
                )
            return Redirect(path=f"/tasks/{task_id}?saved=1", status_code=303)
        outcome = await complete_participant_task(
            state, db, participant, task_id, submitted, client_of(request)
        )
        if outcome.not_found:
            raise NotFoundException(NOT_FOUND)
        if outcome.form_unsupported:
            return await task_page(
                request, db, participant, task, values=submitted, errors={}, status=409
            )
        if outcome.errors or errors:
            task = await get_participant_task(
                db, participant.case_id, participant.participant_id, task_id
            )
            assert task is not None
            return await task_page(
                request,
                db,
                participant,
                task,
                values=submitted,
                errors={**outcome.errors, **errors},
                status=400,
            )
        return Redirect(path="/case/", status_code=303)


async def remove_participant_document(
    state: State,
    db: AsyncSession,
    participant: ParticipantContext,
    task: PanelTask,
    raw_id: str,
) -> None:
    try:
        document_id = uuid.UUID(raw_id)
    except ValueError:
        return
    document = await get_participant_document(
        db, participant.case_id, participant.participant_id, document_id
    )
    if document is None or document.panel_task_id != task.id:
        return
    if not await remove_document(db, state.document_storage, document):
        return
    audit.record(
        db,
        audit.DOCUMENT_REMOVED,
        case_id=participant.case_id,
        participant_id=participant.participant_id,
        document=str(document.id),
    )


async def task_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    task: PanelTask,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    saved: bool = False,
    code: str = "",
    status: int = 200,
) -> Template:
    schema = localise(task.form_schema or {})
    signing = None
    if task.state == TaskState.OPEN and signature_components(schema):
        context = await signing_context(db, participant)
        signing = context.document if context else None
    descriptor = await case_types.of_case_id(db, participant.case_id)
    variables = await form_variables(db, task)
    returned = False
    if task.state == TaskState.OPEN:
        latest = await latest_submission(db, task.id)
        returned = latest is not None and latest.state == SubmissionState.REJECTED
        if returned and latest is not None and not values:
            # What was sent comes back as the page's starting point, as form-js data.
            variables = {**variables, **latest.answers}
    return Template(
        "task.html.j2",
        context={
            "task": task,
            "returned": returned,
            "form_problems": check_form(schema),
            "task_title": descriptor.task_name(task.element_id, task.name),
            "fields": page_fields(
                schema,
                values=values,
                errors=errors,
                variables=variables,
                today=form_today(request.app.state.clock),
            ),
            "consent_versions": consent_versions(schema),
            "values": values,
            "saved": saved,
            "errors": errors,
            "uploaded": await task_documents(db, task, participant.participant_id),
            "has_files": bool(filepickers(schema)),
            "signing": signing,
            "code_state": code,
            "participant_session": session_context(request, participant),
        },
        status_code=status,
    )
