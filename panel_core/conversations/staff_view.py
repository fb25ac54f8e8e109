"""The chat as the dashboard shows it: queue rows and a conversation with its case beside it.

Participants are named by their role in the case ("Co-borrower 2"), never by name or phone:
the queue is read over shoulders, and the role is what the employee needs to answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor
from panel_core.cases.view import CaseView, DocumentRow, TaskRow, case_view, task_state_label
from panel_core.conversations import service
from panel_core.conversations.links import render_message
from panel_core.db.models import (
    Case,
    Conversation,
    ConversationMessage,
    ConversationState,
    MessageAuthor,
    PanelTask,
    Participant,
    TaskState,
)
from panel_core.i18n import gettext, pick
from panel_core.identity.actors import StaffActor


@dataclass(frozen=True, slots=True)
class QueueRow:
    conversation: Conversation
    case_number: str
    case_type_name: str
    # The participant's role in the case.
    who: str
    task_name: str
    unread: bool


@dataclass(frozen=True, slots=True)
class MessageView:
    message: ConversationMessage
    from_participant: bool
    author: str
    html: Markup


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: Conversation
    case: Case
    descriptor: Descriptor
    case_view: CaseView
    participant: Participant
    who: str
    messages: list[MessageView]
    # The task it came from ("Ask about this step"), as the case's task list names it.
    task: TaskRow | None
    # The participant's open tasks: where they are in the case.
    open_tasks: list[TaskRow]
    documents: list[DocumentRow]


class _Descriptors:
    """Each case's descriptor, read once per (case type, version) for a page."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._cache: dict[tuple[str, int | None], Descriptor] = {}

    async def of(self, case: Case) -> Descriptor:
        key = (case.case_type, case.descriptor_version)
        if key not in self._cache:
            self._cache[key] = await case_types.of_case(self._session, case)
        return self._cache[key]


async def _cases(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Case]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(Case).where(Case.id.in_(ids)).options(selectinload(Case.participants))
    )
    return {case.id: case for case in rows}


async def _tasks(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, PanelTask]:
    if not ids:
        return {}
    rows = await session.scalars(select(PanelTask).where(PanelTask.id.in_(ids)))
    return {task.id: task for task in rows}


async def queue_rows(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> list[QueueRow]:
    cases = await _cases(session, {c.case_id for c in conversations})
    tasks = await _tasks(session, {c.task_id for c in conversations if c.task_id})
    descriptors = _Descriptors(session)
    rows = []
    for conversation in conversations:
        case = cases.get(conversation.case_id)
        if case is None:
            continue
        descriptor = await descriptors.of(case)
        task = tasks.get(conversation.task_id) if conversation.task_id else None
        rows.append(
            QueueRow(
                conversation=conversation,
                case_number=case.case_number,
                case_type_name=pick(descriptor.name),
                who=descriptor.role_names(case.participants).get(conversation.participant_id, ""),
                task_name=descriptor.task_name(task.element_id, task.name) if task else "",
                unread=service.unread_by_staff(conversation),
            )
        )
    return rows


def _task_row(descriptor: Descriptor, task: PanelTask) -> TaskRow:
    return TaskRow(
        task=task,
        name=descriptor.task_name(task.element_id, task.name),
        who="",
        state_label=task_state_label(task.state),
    )


async def conversation_view(
    session: AsyncSession, conversation: Conversation
) -> ConversationView | None:
    case = (await _cases(session, {conversation.case_id})).get(conversation.case_id)
    if case is None:
        return None
    view = await case_view(session, case)
    descriptor = view.descriptor
    labels = descriptor.role_names(case.participants)
    participant = next(p for p in case.participants if p.id == conversation.participant_id)
    who = labels.get(participant.id, "")
    shown = []
    for message in await service.messages(session, conversation):
        if message.author == MessageAuthor.PARTICIPANT:
            author = who
        elif message.author == MessageAuthor.STAFF:
            author = message.staff_name or message.staff_username or gettext("a member of staff")
        else:
            author = gettext("The panel")
        shown.append(
            MessageView(
                message=message,
                from_participant=message.author == MessageAuthor.PARTICIPANT,
                author=author,
                # Whatever the participant typed stays text: no link of theirs is clickable.
                html=render_message(message.body),
            )
        )
    task: TaskRow | None = None
    if conversation.task_id:
        found = next((row for row in view.tasks if row.task.id == conversation.task_id), None)
        if found is None:
            loaded = await session.get(PanelTask, conversation.task_id)
            found = _task_row(descriptor, loaded) if loaded else None
        task = found
    return ConversationView(
        conversation=conversation,
        case=case,
        descriptor=descriptor,
        case_view=view,
        participant=participant,
        who=who,
        messages=shown,
        task=task,
        open_tasks=[
            row
            for row in view.tasks
            if row.task.participant_id == participant.id and row.task.state == TaskState.OPEN
        ],
        documents=view.documents,
    )


@dataclass(frozen=True, slots=True)
class CaseConversationRow:
    conversation: Conversation
    who: str
    unread: bool
    last_message_at: datetime
    open: bool


async def case_conversations(
    session: AsyncSession, staff: StaffActor, case: Case
) -> list[CaseConversationRow]:
    """The case's conversations this member of staff may open, for the case page."""
    descriptor = await case_types.of_case(session, case)
    labels = descriptor.role_names(case.participants)
    return [
        CaseConversationRow(
            conversation=conversation,
            who=labels.get(conversation.participant_id, ""),
            unread=service.unread_by_staff(conversation),
            last_message_at=conversation.last_message_at,
            open=conversation.state == ConversationState.OPEN,
        )
        for conversation in await service.of_case(session, case.id)
        if service.may_see(staff, conversation)
    ]
