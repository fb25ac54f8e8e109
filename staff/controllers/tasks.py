"""A staff task: the form beside the case, and claiming, giving back, reassigning,
rescheduling and completing it. The page and the JSON API follow the same rules."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.variants import STAFF
from panel_core.cases.view import case_view, load_case, may_review, task_state_label
from panel_core.db.models import PanelTask, TaskState
from panel_core.forms import form_today, hidden_now, localise, page_fields
from panel_core.forms.checks import check_form
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import StaffActor
from panel_core.notifications.live import TASKS_CHANGED, publish_case_update, publish_staff_update
from panel_core.tasks.drafts import load_draft, save_draft
from panel_core.tasks.staff import (
    BAD_DATE,
    GONE,
    Refused,
    Schedule,
    claim,
    complete,
    reassign,
    reschedule,
    unclaim,
)
from panel_core.tasks.task_form import TaskForm, form_for, variables_for
from panel_core.tasks.work import may_work, open_task
from panel_web.forms import form_values
from panel_web.request import client_of
from staff.controllers.inbox import TaskOut
from staff.dependencies import StaffController, StaffServices

NOT_FOUND = "Not found"
LOCAL_ZONE = ZoneInfo("Europe/Warsaw")
NOTICES = {
    "claimed": N_("The task is yours now."),
    "saved": N_("Your answers are saved. You can continue later."),
    "reassigned": N_("The task is reassigned."),
    "scheduled": N_("The schedule is saved."),
}


def local_input(moment: datetime | None) -> str:
    """A time as a datetime-local field shows it: the bank's local time, to the minute."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL_ZONE).strftime("%Y-%m-%dT%H:%M")


def parse_local(text: str) -> datetime | None:
    """A datetime-local field's value in the bank's local time; empty is no date."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Refused(BAD_DATE) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_ZONE)
    return moment.astimezone(UTC)


async def visible_task(db: AsyncSession, staff: StaffActor, task_id: uuid.UUID) -> PanelTask:
    """The task, or the same 404 whether it does not exist or is outside the person's groups."""
    task = await open_task(db, staff, task_id)
    if task is None:
        raise NotFoundException(NOT_FOUND)
    return task


async def staff_form(
    db: AsyncSession,
    task: PanelTask,
    staff: StaffActor,
    descriptor: case_types.Descriptor | None = None,
) -> TaskForm:
    """The form this member of staff works the task in: the descriptor's variant for their
    groups in the dashboard, or the task's own."""
    if descriptor is None:
        descriptor = (
            await case_types.of_case_id(db, task.case_id)
            if task.case_id
            else case_types.fallback("")
        )
    return await form_for(db, task, descriptor, mode=STAFF, groups=staff.groups)


async def task_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    services: StaffServices,
    staff: StaffActor,
    task: PanelTask,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    message_is_error: bool = False,
    status_code: int = 200,
) -> Template:
    case = await load_case(db, task.case_id) if task.case_id else None
    view = await case_view(db, case) if case is not None else None
    descriptor = view.descriptor if view else await case_types.load(db, "")
    form = await staff_form(db, task, staff, descriptor)
    schema = localise(form.schema)
    working = may_work(staff, task)
    if values is None:
        values = await load_draft(db, task, staff) if working else {}
    return Template(
        "staff/task.html.j2",
        context={
            "staff": staff,
            "task": task,
            "task_title": descriptor.task_name(task.element_id, task.name),
            "case": case,
            "case_type_name": view.case_type_name if view else "",
            "view": view,
            "state_label": task_state_label(task.state),
            "working": working,
            "form_problems": check_form(schema),
            "fields": page_fields(
                schema,
                values=values,
                errors=errors or {},
                variables=await variables_for(db, task, form),
                today=form_today(services.clock),
            )
            if working
            else [],
            "variant": form.variant,
            "errors": errors or {},
            "due_value": local_input(task.due_date),
            "follow_up_value": local_input(task.follow_up_date),
            "reviewable": bool(view)
            and may_review(staff, [row.task for row in view.tasks] if view else []),
            "return_to": request.url.path,
            "message": message,
            "message_is_error": message_is_error,
        },
        status_code=status_code,
    )


async def _changed(services: StaffServices, task: PanelTask) -> None:
    await publish_staff_update(services.redis, TASKS_CHANGED)
    if task.case_id:
        await publish_case_update(services.redis, task.case_id, TASKS_CHANGED)


class StaffTasksController(StaffController):
    path = "/tasks"
    include_in_schema = False

    @get("/{task_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
        notice: FromQuery[str] = "",
    ) -> Template:
        task = await visible_task(db, staff, task_id)
        client = client_of(request)
        audit.record(
            db,
            audit.TASK_VIEWED,
            case_id=task.case_id,
            actor=staff,
            client=client,
            task=task.element_id,
        )
        await db.commit()
        message = NOTICES.get(notice)
        return await task_page(
            request, db, services, staff, task, message=gettext(message) if message else ""
        )

    @post("/{task_id:uuid}/claim")
    async def claim_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        async def act(task: PanelTask) -> None:
            await claim(db, services.engine, staff, task, client_of(request))

        return await self._act(
            request, db, services, staff, task_id, act, f"/tasks/{task_id}?notice=claimed"
        )

    @post("/{task_id:uuid}/unclaim")
    async def unclaim_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        async def act(task: PanelTask) -> None:
            await unclaim(db, services.engine, staff, task, client_of(request))

        return await self._act(request, db, services, staff, task_id, act, "/?notice=given-back")

    @post("/{task_id:uuid}/reassign")
    async def reassign_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        assignee = str((await request.form()).get("assignee", ""))

        async def act(task: PanelTask) -> None:
            await reassign(db, services.engine, staff, task, assignee, client_of(request))

        return await self._act(
            request, db, services, staff, task_id, act, f"/tasks/{task_id}?notice=reassigned"
        )

    @post("/{task_id:uuid}/schedule")
    async def schedule_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        form = await request.form()

        async def act(task: PanelTask) -> None:
            priority_text = str(form.get("priority", "")).strip()
            if priority_text and not priority_text.isdigit():
                raise Refused(N_("Enter the priority as a whole number from 0 to 100."))
            schedule = Schedule(
                due_date=parse_local(str(form.get("due_date", ""))),
                follow_up_date=parse_local(str(form.get("follow_up_date", ""))),
                priority=int(priority_text) if priority_text else task.priority,
            )
            await reschedule(db, services.engine, staff, task, schedule, client_of(request))

        return await self._act(
            request, db, services, staff, task_id, act, f"/tasks/{task_id}?notice=scheduled"
        )

    @post("/{task_id:uuid}/conditions", status_code=200)
    async def conditions(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> dict[str, list[str]]:
        """What the form's current values hide, judged as when it is sent (conditions.js)."""
        task = await visible_task(db, staff, task_id)
        values = form_values(await request.form())
        values.pop("action", None)
        form = await staff_form(db, task, staff)
        hidden = hidden_now(
            form.schema,
            values,
            await variables_for(db, task, form),
            form_today(services.clock),
        )
        return {"hidden": hidden}

    @post("/{task_id:uuid}")
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        task = await visible_task(db, staff, task_id)
        submitted = form_values(await request.form())
        action = str(submitted.pop("action", ""))
        if action == "save":
            if not may_work(staff, task):
                return await self._refused(
                    request, db, services, staff, task_id, Refused(GONE), status_code=409
                )
            await save_draft(db, task, staff, submitted)
            await db.commit()
            return Redirect(f"/tasks/{task_id}?notice=saved", status_code=303)
        outcome = await complete(
            db,
            services.completions,
            services.clock,
            staff,
            task,
            submitted,
            client_of(request),
            form=await staff_form(db, task, staff),
        )
        if outcome.refused:
            return await self._refused(
                request, db, services, staff, task_id, Refused(outcome.refused)
            )
        if outcome.errors:
            return await task_page(
                request,
                db,
                services,
                staff,
                task,
                values=submitted,
                errors=outcome.errors,
                status_code=400,
            )
        await _changed(services, task)
        return Redirect("/?notice=completed", status_code=303)

    async def _act(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        task_id: uuid.UUID,
        act: Callable[[PanelTask], Awaitable[None]],
        then: str,
    ) -> Template | Redirect:
        """Do ``act`` to a task the staff member may see, then go to ``then``.

        A refusal (the engine's or the rules') changes nothing and shows the task page with
        the reason.
        """
        task = await visible_task(db, staff, task_id)
        try:
            await act(task)
        except Refused as refused:
            await db.rollback()
            return await self._refused(request, db, services, staff, task_id, refused)
        await db.commit()
        await _changed(services, task)
        return Redirect(then, status_code=303)

    async def _refused(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        task_id: uuid.UUID,
        refused: Refused,
        *,
        status_code: int = 409,
    ) -> Template:
        # Read again: the engine's answer may have changed who holds the task.
        task = await visible_task(db, staff, task_id)
        await db.refresh(task)
        return await task_page(
            request,
            db,
            services,
            staff,
            task,
            message=gettext(refused.message),
            message_is_error=True,
            status_code=status_code,
        )


class CompletionIn(msgspec.Struct, forbid_unknown_fields=True):
    # The form's answers by field key, as the page would send them.
    answers: dict[str, Any]


class CompletionOut(msgspec.Struct, rename="camel"):
    state: str
    delivered: bool


def task_out(task: PanelTask, case_number: str | None) -> TaskOut:
    return TaskOut(
        id=task.id,
        user_task_key=task.user_task_key,
        name=task.name,
        element_id=task.element_id,
        case_id=task.case_id,
        case_number=case_number,
        assignee=task.assignee,
        candidate_groups=list(task.candidate_groups or []),
        priority=task.priority,
        due_date=task.due_date.isoformat() if task.due_date else None,
        follow_up_date=task.follow_up_date.isoformat() if task.follow_up_date else None,
        overdue=bool(task.due_date and task.due_date.replace(tzinfo=UTC) < datetime.now(UTC)),
        state=task.state.value,
    )


class StaffTasksApiController(StaffController):
    """The same task rules for API clients; a task outside the caller's groups is a 404."""

    path = "/api/tasks"
    tags = ["staff"]  # noqa: RUF012 - Litestar reads class attributes

    @get("/{task_id:uuid}")
    async def get_task(
        self,
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> TaskOut:
        task = await visible_task(db, staff, task_id)
        case = await load_case(db, task.case_id) if task.case_id else None
        return task_out(task, case.case_number if case else None)

    @post("/{task_id:uuid}/assignment", status_code=200)
    async def claim_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
    ) -> TaskOut:
        """Claim the task; 409 if someone else holds it."""
        task = await visible_task(db, staff, task_id)
        try:
            await claim(db, services.engine, staff, task, client_of(request))
        except Refused as refused:
            await db.rollback()
            raise ClientException(gettext(refused.message), status_code=409) from refused
        await db.commit()
        await _changed(services, task)
        return task_out(task, None)

    @post("/{task_id:uuid}/completion", status_code=200)
    async def complete_task(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        task_id: FromPath[uuid.UUID],
        data: JSONBody[CompletionIn],
    ) -> CompletionOut:
        task = await visible_task(db, staff, task_id)
        outcome = await complete(
            db,
            services.completions,
            services.clock,
            staff,
            task,
            data.answers,
            client_of(request),
            form=await staff_form(db, task, staff),
        )
        if outcome.refused:
            raise ClientException(gettext(outcome.refused), status_code=409)
        if outcome.errors:
            raise ClientException("The answers are not valid.", extra={"errors": outcome.errors})
        await _changed(services, task)
        return CompletionOut(state=TaskState.SUBMITTED.value, delivered=outcome.delivered)
