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

from panel_core.audit import activity
from panel_core.cases.case_types import Descriptor, status_label
from panel_core.db.models import (
    ActivityEvent,
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
from panel_core.tasks.service import list_participant_tasks

ACTIVITY_LIMIT = 30


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
    # The file name of the rejected document this one was sent in place of.
    replaces: str | None = None


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
    # Why the case ended as it did; empty unless the status is final and allows showing it.
    reason: str = ""

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
    """Uploaded files with their state, plus what open tasks still ask for.

    A replaced document is not listed: the participant dealt with it, and the file sent in
    its place, which names it, is what they follow now.
    """

    def title(key: str, fallback: str) -> str:
        entry = descriptor.documents.get(key)
        return pick(entry.title) if entry else fallback

    names = {d.id: d.filename for d in documents}
    views = [
        DocumentView(
            id=d.id,
            title=title(d.field_key, d.filename),
            filename=d.filename,
            state=d.state.value,
            note=d.review_note if d.state == DocumentState.REJECTED else None,
            task_id=d.panel_task_id,
            replaces=names.get(d.replaces_id) if d.replaces_id else None,
        )
        for d in documents
        if d.state != DocumentState.REPLACED
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
    event: ActivityEvent,
    viewer: uuid.UUID,
    descriptor: Descriptor,
    people: dict[uuid.UUID, Participant],
    names: dict[uuid.UUID, str],
) -> str | None:
    details = event.details or {}
    if event.kind == activity.CASE_STATUS_CHANGED:
        return _(
            "The bank: %(status)s", status=status_label(descriptor, str(details.get("status")))
        )
    mine = event.participant_id == viewer
    person = people.get(event.participant_id) if event.participant_id else None
    if person is None:
        return None
    who = _("You") if mine else names[person.id]
    if event.kind == activity.TASK_COMPLETED:
        task = descriptor.task_name(str(details.get("task", "")), str(details.get("name", "")))
        if details.get("assisted"):
            # Completed on the phone by a member of staff (assisted mode), never named here.
            return _("%(who)s completed “%(task)s” with the help of the bank", who=who, task=task)
        return _("%(who)s completed “%(task)s”", who=who, task=task)
    if event.kind == activity.DOCUMENT_UPLOADED:
        return _("%(who)s sent a document", who=who)
    if event.kind == activity.DOCUMENT_REPLACED:
        # The others learn of a new document, not that the bank rejected one of theirs.
        if mine:
            return _("You sent a new document in place of a rejected one")
        return _("%(who)s sent a document", who=who)
    if event.kind == activity.DOCUMENT_SIGNED:
        return _("%(who)s signed the application", who=who)
    if event.kind == activity.DOCUMENT_REVIEWED and mine:
        if details.get("accepted"):
            return _("The bank accepted your document")
        return _("The bank asked you to send a document again")
    return None


async def activity_feed(
    session: AsyncSession, case: Case, viewer: uuid.UUID, descriptor: Descriptor
) -> list[ActivityItem]:
    people = {p.id: p for p in case.participants}
    names = descriptor.role_names(case.participants)
    events = await session.scalars(
        select(ActivityEvent)
        .where(ActivityEvent.case_id == case.id)
        .order_by(ActivityEvent.occurred_at.desc(), ActivityEvent.id.desc())
        .limit(ACTIVITY_LIMIT)
    )
    items = []
    for event in events:
        text = _describe(event, viewer, descriptor, people, names)
        if text:
            items.append(ActivityItem(event.occurred_at, text, event.participant_id == viewer))
    return items


async def build_overview(
    session: AsyncSession, case: Case, participant_id: uuid.UUID, descriptor: Descriptor
) -> Overview:
    tasks = await list_participant_tasks(session, case.id, participant_id)
    documents = await participant_documents(session, case.id, participant_id)
    status = descriptor.statuses.get(case.status)
    final = bool(status and status.final)
    # Some decisions' reasons reach the participants another way (by post), or are for the
    # bank alone; the case type says which may be shown here.
    show_reason = bool(final and status and status.show_reason)
    role = next((p.role for p in case.participants if p.id == participant_id), "")
    return Overview(
        case_number=case.case_number,
        case_type_name=pick(descriptor.name),
        status=case.status,
        status_label=status_label(descriptor, case.status),
        next_steps=pick(status.next) if status else "",
        final=final,
        instructions=descriptor.instructions_for(role),
        stages=stage_views(descriptor, case.status),
        tasks=[TaskView(t.id, descriptor.task_name(t.element_id, t.name), t.state) for t in tasks],
        documents=document_views(descriptor, tasks, documents),
        faq=[
            (pick(entry.question), pick(entry.answer))
            for entry in descriptor.faq
            if not entry.roles or role in entry.roles
        ],
        activity=await activity_feed(session, case, participant_id, descriptor),
        reason=(case.status_reason or "") if show_reason else "",
    )
