"""The case as one participant sees it: status, stages, their tasks and documents, activity.

Everything here is scoped to one participant. What the others did appears only as their role
("Co-borrower 1 completed “Give your consents”"), never their data.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import audit
from panel_core.case_types import Descriptor, status_label
from panel_core.db.models import (
    AuditEvent,
    Case,
    Document,
    DocumentState,
    PanelTask,
    Participant,
    TaskState,
)
from panel_core.documents.service import participant_documents
from panel_core.forms import input_components
from panel_core.i18n import gettext as _
from panel_core.i18n import pick
from panel_core.tasks import list_participant_tasks

ACTIVITY_LIMIT = 30
# What the feed tells; logins and codes are security events, not case activity.
FEED_EVENTS = (
    audit.TASK_COMPLETED,
    audit.DOCUMENT_UPLOADED,
    audit.DOCUMENT_SIGNED,
    audit.DOCUMENT_REVIEWED,
    audit.CASE_STATUS_CHANGED,
)


class StageState(enum.StrEnum):
    DONE = "done"
    CURRENT = "current"
    UPCOMING = "upcoming"


@dataclass(frozen=True, slots=True)
class StageView:
    title: str
    description: str
    state: StageState


@dataclass(frozen=True, slots=True)
class TaskView:
    id: uuid.UUID
    name: str
    state: TaskState


@dataclass(frozen=True, slots=True)
class DocumentView:
    id: uuid.UUID | None
    title: str
    filename: str
    # "requested" (nothing uploaded yet), or a DocumentState value.
    state: str
    note: str | None
    task_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class ActivityItem:
    at: datetime
    text: str
    mine: bool


@dataclass(slots=True)
class Overview:
    case_number: str
    case_type_name: str
    status: str
    status_label: str
    next_steps: str
    final: bool
    instructions: str
    stages: list[StageView]
    tasks: list[TaskView]
    documents: list[DocumentView]
    faq: list[tuple[str, str]]
    activity: list[ActivityItem] = field(default_factory=list)

    def tasks_in(self, state: TaskState) -> list[TaskView]:
        return [task for task in self.tasks if task.state == state]


def stage_views(descriptor: Descriptor, status: str) -> list[StageView]:
    current = descriptor.stage_index(status)
    entry = descriptor.statuses.get(status)
    final = bool(entry and entry.final)
    views = []
    for index, stage in enumerate(descriptor.stages):
        if index < current or (index == current and final):
            state = StageState.DONE
        elif index == current:
            state = StageState.CURRENT
        else:
            state = StageState.UPCOMING
        views.append(StageView(pick(stage.title), pick(stage.description), state))
    return views


def document_views(
    descriptor: Descriptor, tasks: Sequence[PanelTask], documents: Sequence[Document]
) -> list[DocumentView]:
    """Uploaded files with their state, plus what open tasks still ask for."""

    def title(key: str, fallback: str) -> str:
        entry = descriptor.documents.get(key)
        return pick(entry.title) if entry else fallback

    views = [
        DocumentView(
            id=d.id,
            title=title(d.field_key, d.filename),
            filename=d.filename,
            state=d.state.value,
            note=d.review_note if d.state == DocumentState.REJECTED else None,
            task_id=d.panel_task_id,
        )
        for d in documents
    ]
    uploaded = {(d.panel_task_id, d.field_key) for d in documents}
    for task in tasks:
        if task.state != TaskState.OPEN:
            continue
        for component in input_components(task.form_schema or {}):
            key = component["key"]
            if component.get("type") == "filepicker" and (task.id, key) not in uploaded:
                views.append(
                    DocumentView(
                        id=None,
                        title=title(key, str(component.get("label") or key)),
                        filename="",
                        state="requested",
                        note=None,
                        task_id=task.id,
                    )
                )
    return views


def _describe(
    event: AuditEvent,
    viewer: uuid.UUID,
    descriptor: Descriptor,
    people: dict[uuid.UUID, Participant],
) -> str | None:
    details = event.details or {}
    if event.event == audit.CASE_STATUS_CHANGED:
        return _(
            "The bank: %(status)s", status=status_label(descriptor, str(details.get("status")))
        )
    mine = event.participant_id == viewer
    person = people.get(event.participant_id) if event.participant_id else None
    if person is None:
        return None
    who = _("You") if mine else descriptor.role_name(person.role, person.ordinal)
    if event.event == audit.TASK_COMPLETED:
        task = descriptor.task_name(str(details.get("task", "")), str(details.get("name", "")))
        return _("%(who)s completed “%(task)s”", who=who, task=task)
    if event.event == audit.DOCUMENT_UPLOADED:
        return _("%(who)s sent a document", who=who)
    if event.event == audit.DOCUMENT_SIGNED:
        return _("%(who)s signed the application", who=who)
    if event.event == audit.DOCUMENT_REVIEWED and mine:
        if details.get("accepted"):
            return _("The bank accepted your document")
        return _("The bank asked you to send a document again")
    return None


async def activity_feed(
    session: AsyncSession, case: Case, viewer: uuid.UUID, descriptor: Descriptor
) -> list[ActivityItem]:
    people = {p.id: p for p in case.participants}
    events = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.event.in_(FEED_EVENTS))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(ACTIVITY_LIMIT)
    )
    items = []
    for event in events:
        text = _describe(event, viewer, descriptor, people)
        if text:
            items.append(ActivityItem(event.occurred_at, text, event.participant_id == viewer))
    return items


async def build_overview(
    session: AsyncSession, case: Case, participant_id: uuid.UUID, descriptor: Descriptor
) -> Overview:
    tasks = await list_participant_tasks(session, case.id, participant_id)
    documents = await participant_documents(session, case.id, participant_id)
    status = descriptor.statuses.get(case.status)
    return Overview(
        case_number=case.case_number,
        case_type_name=pick(descriptor.name),
        status=case.status,
        status_label=status_label(descriptor, case.status),
        next_steps=pick(status.next) if status else "",
        final=bool(status and status.final),
        instructions=pick(descriptor.instructions),
        stages=stage_views(descriptor, case.status),
        tasks=[TaskView(t.id, descriptor.task_name(t.element_id, t.name), t.state) for t in tasks],
        documents=document_views(descriptor, tasks, documents),
        faq=[(pick(entry.question), pick(entry.answer)) for entry in descriptor.faq],
        activity=await activity_feed(session, case, participant_id, descriptor),
    )
