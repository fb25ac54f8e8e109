"""Assisted mode: completing a participant's task with them on the phone
(panel_core/tasks/assisted.py decides who may, checks the code they read out, and completes).

The steps are pages of their own: the code sent and typed in, then the form; every one is
refused (403) to a member of staff whose role does not allow assisted mode, and answers 404 for
a task that is not a participant's task of the case.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor
from panel_core.cases.view import mask_phone
from panel_core.db.models import Case, PanelTask, Participant, TaskState
from panel_core.forms import form_today, hidden_now, localise, page_fields
from panel_core.i18n import gettext
from panel_core.identity.actors import StaffActor
from panel_core.notifications.live import TASKS_CHANGED, publish_case_update, publish_staff_update
from panel_core.tasks.assisted import (
    CODE_MESSAGES,
    EXPIRED,
    NOT_ALLOWED,
    NOT_OPEN,
    CodeSent,
    PresenceCheck,
    assisted_form,
    complete,
    may_assist,
    participant_task,
    why_not,
)
from panel_core.tasks.task_form import TaskForm, variables_for
from panel_web.forms import form_values
from panel_web.request import client_of
from staff.controllers.cases import visible_case
from staff.dependencies import StaffController, StaffServices

NOT_FOUND = "Not found"
PATH = "/cases/{case_id:uuid}/tasks/{task_id:uuid}/assisted"
# What the first page says after a step, by the code its address carries.
PROBLEMS = {"expired": EXPIRED}


class Assisting:
    """One request's case, task, participant and form, loaded and checked."""

    def __init__(
        self,
        case: Case,
        task: PanelTask,
        participant: Participant,
        descriptor: Descriptor,
        form: TaskForm,
    ) -> None:
        self.case = case
        self.task = task
        self.participant = participant
        self.descriptor = descriptor
        self.form = form

    @property
    def base(self) -> str:
        return f"/cases/{self.case.id}/tasks/{self.task.id}/assisted"

    @property
    def task_name(self) -> str:
        return self.descriptor.task_name(self.task.element_id, self.task.name)

    @property
    def who(self) -> str:
        return self.descriptor.role_names(self.case.participants).get(self.participant.id, "")

    @property
    def blocked(self) -> str:
        if self.task.state != TaskState.OPEN:
            return NOT_OPEN
        return why_not(self.form, self.descriptor)


async def _assisting(
    db: AsyncSession,
    services: StaffServices,
    staff: StaffActor,
    case_id: uuid.UUID,
    task_id: uuid.UUID,
) -> Assisting:
    if not may_assist(services.settings, staff):
        raise PermissionDeniedException(NOT_ALLOWED)
    case = await visible_case(db, staff, case_id)
    task = await db.get(PanelTask, task_id)
    participant = participant_task(case, task)
    if task is None or participant is None:
        raise NotFoundException(NOT_FOUND)
    descriptor = await case_types.of_case(db, case)
    form = await assisted_form(db, task, descriptor, staff)
    return Assisting(case, task, participant, descriptor, form)


def _presence(services: StaffServices) -> PresenceCheck:
    return PresenceCheck(services.settings, services.redis, services.clock)


def _until(services: StaffServices, seconds: int) -> datetime:
    return datetime.fromtimestamp(services.clock.now() + seconds, UTC)


class AssistedController(StaffController):
    include_in_schema = False

    @get(PATH)
    async def start(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
        code: FromQuery[str] = "",
        problem: FromQuery[str] = "",
    ) -> Template | Redirect:
        """Before the form: the code to the participant's phone, and what they read out."""
        here = await _assisting(db, services, staff, case_id, task_id)
        if not here.blocked and await _presence(services).seconds_left(
            here.task, staff, here.participant
        ):
            return Redirect(f"{here.base}/form", status_code=303)
        audit.record(
            db,
            audit.TASK_VIEWED,
            case_id=here.case.id,
            participant_id=here.participant.id,
            actor=staff,
            client=client_of(request),
            task=here.task.element_id,
            assisted=True,
        )
        await db.commit()
        notice = CODE_MESSAGES.get(code, "")
        return self._start_page(
            services,
            staff,
            here,
            notice=gettext(notice) if notice else "",
            notice_is_error=bool(notice) and code != CodeSent.SENT.value,
            problem=gettext(PROBLEMS[problem]) if problem in PROBLEMS else "",
            code_sent=code == CodeSent.SENT.value,
        )

    @post(f"{PATH}/code")
    async def send_code(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        here = await _assisting(db, services, staff, case_id, task_id)
        if here.blocked:
            return self._start_page(services, staff, here, status_code=409)
        sent = await _presence(services).send(
            db,
            case=here.case,
            participant=here.participant,
            task=here.task,
            task_name=here.task_name,
            agent=staff,
            client=client_of(request),
        )
        await db.commit()
        return Redirect(f"{here.base}?code={sent.value}#code", status_code=303)

    @post(f"{PATH}/presence")
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """The code the participant read out: right, the form opens; wrong, say why."""
        here = await _assisting(db, services, staff, case_id, task_id)
        if here.blocked:
            return self._start_page(services, staff, here, status_code=409)
        typed = str((await request.form()).get("code", ""))[:32]
        outcome = await _presence(services).verify(
            db,
            case=here.case,
            participant=here.participant,
            task=here.task,
            agent=staff,
            code=typed,
            client=client_of(request),
        )
        await db.commit()
        if outcome.confirmed:
            return Redirect(f"{here.base}/form", status_code=303)
        return self._start_page(
            services, staff, here, code_error=outcome.message, code_sent=True, status_code=400
        )

    @get(f"{PATH}/form")
    async def form(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        here = await _assisting(db, services, staff, case_id, task_id)
        presence = _presence(services)
        left = await presence.seconds_left(here.task, staff, here.participant)
        if here.blocked or not left:
            problem = "" if here.blocked else "?problem=expired"
            return Redirect(f"{here.base}{problem}", status_code=303)
        audit.record(
            db,
            audit.ASSISTED_FORM_OPENED,
            case_id=here.case.id,
            participant_id=here.participant.id,
            actor=staff,
            client=client_of(request),
            task=here.task.element_id,
            form=here.form.form_id,
        )
        await db.commit()
        values = await presence.kept_answers(here.task, staff)
        return await self._form_page(db, services, staff, here, left, values=values)

    @post(f"{PATH}/form/conditions", status_code=200)
    async def conditions(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
    ) -> dict[str, list[str]]:
        """What the form's current values hide, judged as when it is sent (conditions.js)."""
        here = await _assisting(db, services, staff, case_id, task_id)
        if not await _presence(services).seconds_left(here.task, staff, here.participant):
            raise PermissionDeniedException(gettext(EXPIRED))
        values = form_values(await request.form())
        values.pop("action", None)
        hidden = hidden_now(
            here.form.schema,
            values,
            await variables_for(db, here.task, here.form),
            form_today(services.clock),
        )
        return {"hidden": hidden}

    @post(f"{PATH}/form")
    async def send(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        here = await _assisting(db, services, staff, case_id, task_id)
        if here.blocked:
            return self._start_page(services, staff, here, status_code=409)
        submitted = form_values(await request.form())
        submitted.pop("action", None)
        presence = _presence(services)
        left = await presence.seconds_left(here.task, staff, here.participant)
        if not left:
            # Kept for the form after the next check, so nothing typed is lost.
            await presence.keep_answers(here.task, staff, submitted)
            return Redirect(f"{here.base}?problem=expired", status_code=303)
        outcome = await complete(
            db,
            services.completions,
            services.clock,
            case=here.case,
            participant=here.participant,
            task=here.task,
            form=here.form,
            descriptor=here.descriptor,
            agent=staff,
            submitted=submitted,
            client=client_of(request),
        )
        if outcome.refused:
            await db.refresh(here.task)
            return await self._form_page(
                db,
                services,
                staff,
                here,
                left,
                values=submitted,
                message=gettext(outcome.refused),
                status_code=409,
            )
        if outcome.errors:
            return await self._form_page(
                db, services, staff, here, left, values=submitted, errors=outcome.errors,
                status_code=400,
            )  # fmt: skip
        await presence.end(here.task, staff)
        await publish_staff_update(services.redis, TASKS_CHANGED)
        await publish_case_update(services.redis, here.case.id, TASKS_CHANGED)
        return Redirect(f"/cases/{here.case.id}?assisted=completed#assisted", status_code=303)

    def _start_page(
        self,
        services: StaffServices,
        staff: StaffActor,
        here: Assisting,
        *,
        notice: str = "",
        notice_is_error: bool = False,
        problem: str = "",
        code_error: str = "",
        code_sent: bool = False,
        status_code: int = 200,
    ) -> Template:
        blocked = here.blocked
        return Template(
            "staff/assisted.html.j2",
            context={
                "staff": staff,
                "case": here.case,
                "task": here.task,
                "task_title": here.task_name,
                "who": here.who,
                "phone": mask_phone(here.participant.phone_e164),
                "base": here.base,
                "blocked": gettext(blocked) if blocked else "",
                "variant": here.form.variant,
                "notice": notice,
                "notice_is_error": notice_is_error,
                "problem": problem,
                "code_error": code_error,
                "code_sent": code_sent,
                "code_minutes": services.settings.otp_ttl_seconds // 60,
                "session_minutes": services.settings.assisted_session_seconds // 60,
                "code_length": services.settings.otp_length,
            },
            status_code=status_code,
        )

    async def _form_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        here: Assisting,
        left: int,
        *,
        values: dict[str, Any],
        errors: dict[str, str] | None = None,
        message: str = "",
        status_code: int = 200,
    ) -> Template:
        schema = localise(here.form.schema)
        return Template(
            "staff/assisted_form.html.j2",
            context={
                "staff": staff,
                "case": here.case,
                "task": here.task,
                "task_title": here.task_name,
                "who": here.who,
                "base": here.base,
                "variant": here.form.variant,
                "until": _until(services, left),
                "fields": page_fields(
                    schema,
                    values=values,
                    errors=errors or {},
                    variables=await variables_for(db, here.task, here.form),
                    today=form_today(services.clock),
                )
                if here.task.state == TaskState.OPEN
                else [],
                "errors": errors or {},
                "message": message,
            },
            status_code=status_code,
        )
