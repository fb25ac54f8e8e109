"""A whole case as the bank's staff see it: participants, every task, answers, documents,
the timeline of what everyone did, and the process instance as the engine reported it.

Staff see what the bank holds; the participants' own views stay in ``overview``. Phone
numbers are shown masked: staff confirm them with the customer, they do not read them out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor, status_label
from panel_core.db.models import (
    ACTIVE_SUBMISSION_STATES,
    AuditEvent,
    Case,
    Document,
    DocumentState,
    EngineIncident,
    EngineProcessInstance,
    IncidentState,
    PanelTask,
    Participant,
    ProcessInstanceState,
    TaskState,
    TaskSubmission,
)
from panel_core.forms.answers import answer_fields
from panel_core.i18n import gettext as _
from panel_core.i18n import pick
from panel_core.identity.actors import StaffActor

TIMELINE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    participant: Participant
    label: str
    phone: str
    invited_at: datetime | None
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: PanelTask
    name: str
    # The participant's role, or who on the bank's side holds or may take it.
    who: str
    state_label: str


@dataclass(frozen=True, slots=True)
class AnswerView:
    who: str
    task: str
    fields: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class DocumentRow:
    document: Document
    title: str
    who: str
    state_label: str


@dataclass(frozen=True, slots=True)
class TimelineItem:
    occurred_at: datetime
    who: str
    what: str


@dataclass(frozen=True, slots=True)
class CaseView:
    case: Case
    descriptor: Descriptor
    case_type_name: str
    status_label: str
    # The channel the case came from, as the descriptor names it.
    channel: str
    stage: str
    final: bool
    participants: list[ParticipantRow]
    tasks: list[TaskRow]
    answers: list[AnswerView]
    documents: list[DocumentRow]
    timeline: list[TimelineItem]
    process_state: str
    incidents: list[EngineIncident]


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    return f"{phone[:3]} ••• ••• {phone[-3:]}" if len(phone) > 6 else "•••"


def task_state_label(state: TaskState) -> str:
    return {
        TaskState.OPEN: _("Open"),
        TaskState.SUBMITTED: _("Sent, being recorded"),
        TaskState.COMPLETED: _("Done"),
        TaskState.WITHDRAWN: _("No longer needed"),
    }[state]


def document_state_label(state: DocumentState) -> str:
    labels = {
        DocumentState.UPLOADED: _("Waiting for review"),
        DocumentState.ACCEPTED: _("Accepted"),
        DocumentState.REJECTED: _("Rejected"),
        DocumentState.REMOVED: _("Removed"),
        DocumentState.REPLACED: _("Rejected; the participant sent a new one"),
    }
    return labels.get(state, state.value)


def process_state_label(instance: EngineProcessInstance | None, open_incidents: int) -> str:
    if instance is None:
        return _("Not reported by the engine yet")
    label = {
        ProcessInstanceState.ACTIVE: _("Running"),
        ProcessInstanceState.COMPLETED: _("Completed"),
        ProcessInstanceState.TERMINATED: _("Cancelled"),
    }[instance.state]
    if open_incidents:
        return _("%(state)s, with %(count)s failed step(s)", state=label, count=open_incidents)
    return label


def staff_side(task: PanelTask) -> str:
    if task.assignee:
        return task.assignee
    if task.candidate_groups:
        return _("team: %(groups)s", groups=", ".join(task.candidate_groups))
    return _("the bank")


async def load_case(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    return await session.scalar(
        select(Case).where(Case.id == case_id).options(selectinload(Case.participants))
    )


async def case_view(session: AsyncSession, case: Case) -> CaseView:
    descriptor = await case_types.of_case(session, case)
    people = descriptor.in_order(case.participants)
    labels = descriptor.role_names(people)
    tasks = list(
        await session.scalars(
            select(PanelTask)
            .where(PanelTask.case_id == case.id)
            .order_by(PanelTask.created_at, PanelTask.element_id)
        )
    )
    documents = list(
        await session.scalars(
            select(Document)
            .where(Document.case_id == case.id, Document.state != DocumentState.REMOVED)
            .order_by(Document.uploaded_at)
        )
    )
    by_id = {str(d.id): d for d in documents}
    submissions = await session.execute(
        select(PanelTask, TaskSubmission)
        .join(TaskSubmission, TaskSubmission.panel_task_id == PanelTask.id)
        .where(
            PanelTask.case_id == case.id,
            PanelTask.state != TaskState.WITHDRAWN,
            TaskSubmission.state.in_(ACTIVE_SUBMISSION_STATES),
        )
        .order_by(TaskSubmission.created_at)
    )
    answers = [
        AnswerView(
            who=labels.get(task.participant_id, _("the bank"))
            if task.participant_id
            else staff_side(task),
            task=descriptor.task_name(task.element_id, task.name),
            fields=answer_fields(task.form_schema or {}, submission.answers, by_id),
        )
        for task, submission in submissions
    ]
    instance = (
        await session.get(EngineProcessInstance, case.process_instance_key)
        if case.process_instance_key
        else None
    )
    incidents = (
        list(
            await session.scalars(
                select(EngineIncident)
                .where(EngineIncident.root_process_instance_key == case.process_instance_key)
                .order_by(EngineIncident.created_at.desc())
            )
        )
        if case.process_instance_key
        else []
    )
    open_incidents = sum(1 for i in incidents if i.state == IncidentState.ACTIVE)
    status = descriptor.statuses.get(case.status)
    stage_index = descriptor.stage_index(case.status)
    return CaseView(
        case=case,
        descriptor=descriptor,
        case_type_name=pick(descriptor.name),
        channel=descriptor.channel_name(case.channel),
        status_label=status_label(descriptor, case.status),
        stage=pick(descriptor.stages[stage_index].title) if descriptor.stages else "",
        final=bool(status and status.final),
        participants=[
            ParticipantRow(
                participant=p,
                label=labels[p.id],
                phone=mask_phone(p.phone_e164),
                invited_at=p.invited_at,
                done=sum(
                    1 for t in tasks if t.participant_id == p.id and t.state == TaskState.COMPLETED
                ),
                total=sum(
                    1 for t in tasks if t.participant_id == p.id and t.state != TaskState.WITHDRAWN
                ),
            )
            for p in people
        ],
        tasks=[
            TaskRow(
                task=t,
                name=descriptor.task_name(t.element_id, t.name),
                who=labels.get(t.participant_id, "") if t.participant_id else staff_side(t),
                state_label=task_state_label(t.state),
            )
            for t in tasks
        ],
        answers=answers,
        documents=[
            DocumentRow(
                document=d,
                title=_document_title(descriptor, d),
                who=labels.get(d.participant_id, ""),
                state_label=document_state_label(d.state),
            )
            for d in documents
        ],
        timeline=await timeline(session, case, descriptor, labels),
        process_state=process_state_label(instance, open_incidents),
        incidents=incidents,
    )


def _document_title(descriptor: Descriptor, document: Document) -> str:
    entry = descriptor.documents.get(document.field_key)
    return pick(entry.title) if entry else document.field_key


def may_review(actor: StaffActor, tasks: list[PanelTask]) -> bool:
    """Documents are reviewed by whoever works on the case's open staff task, or a manager."""
    return actor.manager or any(
        t.participant_id is None and t.state == TaskState.OPEN and t.assignee == actor.username
        for t in tasks
    )


async def timeline(
    session: AsyncSession,
    case: Case,
    descriptor: Descriptor,
    labels: Mapping[uuid.UUID, str],
) -> list[TimelineItem]:
    events = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.event.in_(sorted(_TIMELINE_EVENTS)))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    items = []
    for event in events:
        if event.actor_kind == "staff":
            who = event.staff_name or _("a member of staff")
        elif event.participant_id is not None:
            who = labels.get(event.participant_id, _("a participant"))
        else:
            who = _("the process")
        what = _describe(event, descriptor)
        if event.event == audit.TASK_COMPLETED and (event.details or {}).get("assisted"):
            task = descriptor.task_name(str((event.details or {}).get("task", "")), "")
            what = _(
                "completed “%(task)s” with %(who)s on the phone",
                task=task,
                who=labels.get(event.participant_id, _("a participant"))
                if event.participant_id
                else _("a participant"),
            )
        items.append(TimelineItem(event.occurred_at, who, what))
    return items


def _describe(event: AuditEvent, descriptor: Descriptor) -> str:
    details: Mapping[str, Any] = event.details or {}
    task = descriptor.task_name(str(details.get("task", "")), str(details.get("task", "")))
    describe = {
        audit.CASE_OPENED: lambda: _("opened the case"),
        audit.INVITATION_SENT: lambda: _("was invited by SMS"),
        audit.LOGIN_SUCCEEDED: lambda: _("signed in to the case"),
        audit.TASK_COMPLETED: lambda: _("completed “%(task)s”", task=task),
        audit.TASK_CLAIMED: lambda: _("took “%(task)s”", task=task),
        audit.TASK_UNCLAIMED: lambda: _("gave back “%(task)s”", task=task),
        audit.TASK_REASSIGNED: lambda: _(
            "assigned “%(task)s” to %(to)s", task=task, to=details.get("to") or _("the team")
        ),
        audit.TASK_RESCHEDULED: lambda: _("changed the schedule of “%(task)s”", task=task),
        audit.DOCUMENT_UPLOADED: lambda: _("sent a document"),
        audit.DOCUMENT_SIGNED: lambda: _("signed the application"),
        audit.DOCUMENT_REVIEWED: lambda: (
            _("accepted a document") if details.get("accepted") else _("rejected a document")
        ),
        audit.CASE_STATUS_CHANGED: lambda: _(
            "moved the case to “%(status)s”",
            status=status_label(descriptor, str(details.get("status", ""))),
        ),
        audit.CASE_PURGED: lambda: _("purged the participants' personal data (retention)"),
        audit.INVITATION_RESENT: lambda: _("sent the invitation again"),
        audit.LOGIN_UNLOCKED: lambda: _("unlocked a participant's sign-in"),
        audit.STAFF_MESSAGE_SENT: lambda: (
            _("sent an e-mail") if details.get("channel") == "email" else _("sent a text message")
        ),
        audit.DOCUMENT_SENT_SECURELY: lambda: _("sent a document by e-mail, its password by SMS"),
    }
    return describe.get(event.event, lambda: event.event)()


_TIMELINE_EVENTS = frozenset(
    {
        audit.CASE_OPENED,
        audit.CASE_PURGED,
        audit.INVITATION_SENT,
        audit.LOGIN_SUCCEEDED,
        audit.TASK_COMPLETED,
        audit.TASK_CLAIMED,
        audit.TASK_UNCLAIMED,
        audit.TASK_REASSIGNED,
        audit.TASK_RESCHEDULED,
        audit.DOCUMENT_UPLOADED,
        audit.DOCUMENT_SIGNED,
        audit.DOCUMENT_REVIEWED,
        audit.CASE_STATUS_CHANGED,
        audit.INVITATION_RESENT,
        audit.LOGIN_UNLOCKED,
        audit.STAFF_MESSAGE_SENT,
        audit.DOCUMENT_SENT_SECURELY,
    }
)
