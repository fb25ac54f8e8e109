"""What a member of staff does with a task: claim, give back, reassign, reschedule, complete.

Assignment goes straight to the engine (the person waits for the answer: taken, or someone
else was first); the panel's copy follows the engine's ASSIGNED and UPDATED records and is
updated at once as well, so the next page shows the result. Completions go through the
completion outbox like participants' ones: stored first, then delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.clock import Clock
from panel_core.db.models import PanelTask, TaskState, TaskSubmission
from panel_core.engine.rest import (
    CamundaRestClient,
    Delivery,
    DeliveryOutcome,
    EngineConflictError,
    EngineNotFoundError,
    EngineRejectedError,
    EngineUnavailableError,
)
from panel_core.forms import form_today
from panel_core.forms.checks import check_form
from panel_core.i18n import N_
from panel_core.identity.actors import Client, StaffActor
from panel_core.outbox.dispatcher import Outbox
from panel_core.tasks.completions import TaskNotOpenError, VariablesTooLargeError
from panel_core.tasks.task_form import TaskForm, own_form, variables_for
from panel_core.tasks.work import judge, may_see, may_work, send

TAKEN = N_("Someone else has just taken this task. It is theirs now.")
ENGINE_DOWN = N_("The process engine is not answering. Nothing was changed; try again shortly.")
GONE = N_("This task is no longer open.")
NOT_YOURS = N_("Take the task first: only the person it is assigned to can complete it.")
MANAGERS_ONLY = N_("Only a team manager can do that.")
BAD_DATE = N_("Enter a date and time, or leave it empty.")


class Refused(Exception):
    """The action was not done; the message (a msgid) says why, for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _engine_call(action: Any) -> None:
    try:
        await action
    except EngineConflictError as exc:
        raise Refused(TAKEN) from exc
    except EngineNotFoundError as exc:
        raise Refused(GONE) from exc
    except (EngineUnavailableError, EngineRejectedError) as exc:
        raise Refused(ENGINE_DOWN) from exc


def _audit(
    session: AsyncSession,
    event: str,
    actor: StaffActor,
    task: PanelTask,
    client: Client,
    **details: Any,
) -> None:
    audit.record(
        session,
        event,
        case_id=task.case_id,
        actor=actor,
        client=client,
        task=task.element_id,
        user_task_key=task.user_task_key,
        **details,
    )


async def claim(
    session: AsyncSession,
    engine: CamundaRestClient,
    actor: StaffActor,
    task: PanelTask,
    client: Client,
) -> None:
    """Take the task; refused if someone else holds it (the engine decides, atomically)."""
    if task.state != TaskState.OPEN or not may_see(actor, task):
        raise Refused(GONE)
    await _engine_call(
        engine.assign_user_task(task.user_task_key, actor.username, allow_override=False)
    )
    task.assignee = actor.username
    _audit(session, audit.TASK_CLAIMED, actor, task, client)


async def unclaim(
    session: AsyncSession,
    engine: CamundaRestClient,
    actor: StaffActor,
    task: PanelTask,
    client: Client,
) -> None:
    if task.state != TaskState.OPEN or not may_see(actor, task):
        raise Refused(GONE)
    if task.assignee != actor.username and not actor.manager:
        raise Refused(MANAGERS_ONLY)
    await _engine_call(engine.unassign_user_task(task.user_task_key))
    previous, task.assignee = task.assignee, None
    _audit(session, audit.TASK_UNCLAIMED, actor, task, client, previous=previous)


async def reassign(
    session: AsyncSession,
    engine: CamundaRestClient,
    actor: StaffActor,
    task: PanelTask,
    assignee: str,
    client: Client,
) -> None:
    """A manager gives the task to someone (or back to the pool with an empty name)."""
    if not actor.manager:
        raise Refused(MANAGERS_ONLY)
    if task.state != TaskState.OPEN or not may_see(actor, task):
        raise Refused(GONE)
    assignee = assignee.strip()[:255]
    if assignee:
        await _engine_call(
            engine.assign_user_task(task.user_task_key, assignee, allow_override=True)
        )
    else:
        await _engine_call(engine.unassign_user_task(task.user_task_key))
    previous, task.assignee = task.assignee, assignee or None
    _audit(session, audit.TASK_REASSIGNED, actor, task, client, previous=previous, to=assignee)


@dataclass(frozen=True, slots=True)
class Schedule:
    due_date: datetime | None
    follow_up_date: datetime | None
    priority: int


async def reschedule(
    session: AsyncSession,
    engine: CamundaRestClient,
    actor: StaffActor,
    task: PanelTask,
    schedule: Schedule,
    client: Client,
) -> None:
    if not actor.manager:
        raise Refused(MANAGERS_ONLY)
    if task.state != TaskState.OPEN or not may_see(actor, task):
        raise Refused(GONE)
    changeset: dict[str, Any] = {
        "dueDate": schedule.due_date.isoformat() if schedule.due_date else "",
        "followUpDate": schedule.follow_up_date.isoformat() if schedule.follow_up_date else "",
        "priority": max(0, min(100, schedule.priority)),
    }
    await _engine_call(engine.update_user_task(task.user_task_key, changeset))
    task.due_date = schedule.due_date
    task.follow_up_date = schedule.follow_up_date
    task.priority = changeset["priority"]
    _audit(session, audit.TASK_RESCHEDULED, actor, task, client, changeset=changeset)


@dataclass(slots=True)
class StaffCompletion:
    errors: dict[str, str] = field(default_factory=dict)
    delivered: bool = False
    refused: str = ""


async def complete(
    session: AsyncSession,
    completions: Outbox[TaskSubmission, Delivery],
    clock: Clock,
    actor: StaffActor,
    task: PanelTask,
    submitted: Mapping[str, Any],
    client: Client,
    form: TaskForm | None = None,
) -> StaffCompletion:
    """Judge the answers by the pinned form (or ``form``, the descriptor's variant of it for
    the person); store them; deliver them to the engine."""
    form = form or own_form(task)
    if not may_work(actor, task):
        return StaffCompletion(refused=GONE if task.state != TaskState.OPEN else NOT_YOURS)
    if check_form(form.schema):
        return StaffCompletion(refused=N_("This form uses rules the panel cannot check."))
    answers, errors = judge(
        task,
        submitted,
        variables=await variables_for(session, task, form),
        today=form_today(clock),
        schema=form.schema,
    )
    if errors:
        return StaffCompletion(errors=errors)
    lease = completions.new_lease()
    try:
        submission = await send(
            session,
            actor,
            task,
            answers,
            lease=lease,
            client=client,
            schema=form.schema,
            form_key=form.form_key,
        )
    except (TaskNotOpenError, VariablesTooLargeError):
        await session.rollback()
        return StaffCompletion(refused=GONE)
    await session.commit()
    delivery = await completions.deliver_leased(submission.id, lease)
    return StaffCompletion(
        delivered=delivery is not None and delivery.outcome is DeliveryOutcome.DELIVERED
    )
