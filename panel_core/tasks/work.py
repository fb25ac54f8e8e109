"""Working on a task, for any actor: who may see and do it, judging the answers, sending it.

One policy serves the participants' panel and the staff dashboard:

* a participant sees and works only their own tasks of their own case;
* a member of staff sees a staff task (one no participant is assigned) assigned to them or
  offered to one of their groups; a team manager sees every staff task. They work on it once
  they hold it (claimed, or assigned to them by a manager). A task outside that is, to them,
  a task that does not exist: the same 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.db.models import PanelTask, TaskState, TaskSubmission
from panel_core.forms import localise, process_variables, read_submission
from panel_core.identity.actors import Actor, Client, ParticipantActor, StaffActor
from panel_core.outbox.dispatcher import Lease
from panel_core.tasks.completions import submit
from panel_core.tasks.drafts import discard_draft


def may_see(actor: Actor, task: PanelTask) -> bool:
    if isinstance(actor, ParticipantActor):
        return task.case_id == actor.case_id and task.participant_id == actor.participant_id
    if task.participant_id is not None:
        return False
    return (
        actor.manager
        or task.assignee == actor.username
        or bool(actor.groups & set(task.candidate_groups or []))
    )


def may_work(actor: Actor, task: PanelTask) -> bool:
    if task.state != TaskState.OPEN or not may_see(actor, task):
        return False
    if isinstance(actor, StaffActor):
        return task.assignee == actor.username
    return True


async def open_task(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> PanelTask | None:
    """The task if the actor may see it; None as for a task that does not exist."""
    task = await session.scalar(select(PanelTask).where(PanelTask.id == task_id))
    return task if task is not None and may_see(actor, task) else None


def judge(
    task: PanelTask,
    submitted: Mapping[str, Any],
    *,
    variables: Mapping[str, Any],
    today: date,
    files: Mapping[str, Sequence[str]] | None = None,
    schema: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The answers as the pinned form reads them, and the errors by field (messages name
    fields by their label in the actor's language). ``files`` are the ids of the documents
    uploaded to each file picker; without them file pickers are left out. ``schema`` is the
    form the answers were given in where it is not the task's own (a variant of it)."""
    form = task.form_schema if schema is None else schema
    return read_submission(
        localise(form or {}), submitted, variables=variables, today=today, files=files
    )


async def send(
    session: AsyncSession,
    actor: Actor,
    task: PanelTask,
    answers: Mapping[str, Any],
    *,
    lease: Lease,
    client: Client | None = None,
    attach: Callable[[TaskSubmission], None] | None = None,
    schema: Mapping[str, Any] | None = None,
    form_key: int | None = None,
    assisted_by: StaffActor | None = None,
) -> TaskSubmission:
    """Store the completion (the caller commits, then delivers it with ``lease``).

    ``attach`` links what belongs to the submission (a signature) before anything is
    flushed: rows that are never updated must be inserted complete. ``schema`` and
    ``form_key`` name the form the answers were given in where it is a variant of the task's
    own. ``assisted_by`` is the member of staff who completed a participant's task (``actor``)
    with them on the phone: the audit log names them, the participants' feed says the bank
    helped.
    """
    form = task.form_schema if schema is None else schema
    assisted = assisted_by is not None and isinstance(actor, ParticipantActor)
    marks: dict[str, Any] = {"assisted": True} if assisted else {}
    audit.record(
        session,
        audit.TASK_COMPLETED,
        case_id=task.case_id,
        participant_id=actor.participant_id if isinstance(actor, ParticipantActor) else None,
        actor=assisted_by or actor,
        client=client,
        task=task.element_id,
        **marks,
    )
    if isinstance(actor, ParticipantActor):
        activity.record(
            session,
            activity.TASK_COMPLETED,
            case_id=actor.case_id,
            participant_id=actor.participant_id,
            task=task.element_id,
            **marks,
        )
    submission = await submit(
        session,
        task,
        answers=answers,
        variables=process_variables(form or {}, answers),
        submitted_by=actor.reference,
        lease=lease,
    )
    submission.form_key = form_key if form_key is not None else task.form_key
    submission.assisted_by = assisted_by.reference if assisted_by is not None and assisted else None
    if attach is not None:
        attach(submission)
    await discard_draft(session, task)
    return submission
