"""The chat as a participant reads it: their conversations, each message with who it is from,
the step it is about, and what the FAQ answered. Built once for the pages and the JSON API.

Staff answers are shown with links clickable only to the hosts the bank allows; the
participant's own words are escaped plain text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases.case_types import Descriptor
from panel_core.conversations import service
from panel_core.conversations.faq import Suggestion, faq_index
from panel_core.conversations.links import allowed_hosts, render_message
from panel_core.db.models import (
    Conversation,
    ConversationMessage,
    ConversationResolution,
    ConversationState,
    MessageAuthor,
    PanelTask,
    Participant,
)
from panel_core.i18n import N_, current_locale, gettext, pick
from panel_core.identity.actors import ParticipantActor
from panel_core.settings import Settings

YOU = N_("You")
NEW_MESSAGE_FROM_BANK = N_("New message from the bank")
NEW_MESSAGE_FROM = N_("New message from %(name)s")

# How a message's author reads in the JSON API.
AUTHOR_PARTICIPANT = "participant"
AUTHOR_BANK = "bank"
AUTHOR_PANEL = "panel"


@dataclass(frozen=True, slots=True)
class MessageView:
    id: uuid.UUID
    # AUTHOR_PARTICIPANT, AUTHOR_BANK or AUTHOR_PANEL.
    author: str
    author_name: str
    text: str
    html: Markup
    sent_at: datetime
    # What a screen reader hears when it arrives while the page is open (the bank's only).
    announcement: str


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    task_id: uuid.UUID | None
    task_name: str
    state: str
    resolution: str | None
    unread: bool
    created_at: datetime
    last_message_at: datetime
    # The first words of the question, for the list.
    preview: str
    # The FAQ entry that answered it, when it was.
    faq_question: str
    faq_answer: str
    messages: list[MessageView]

    @property
    def open(self) -> bool:
        return self.state == ConversationState.OPEN.value

    @property
    def resolved_by_faq(self) -> bool:
        return self.resolution == ConversationResolution.FAQ.value


PREVIEW_CHARS = 120


def actor_of(case_id: uuid.UUID, participant_id: uuid.UUID) -> ParticipantActor:
    return ParticipantActor(case_id=case_id, participant_id=participant_id)


def _message_view(
    descriptor: Descriptor, message: ConversationMessage, hosts: frozenset[str]
) -> MessageView:
    if message.author == MessageAuthor.STAFF:
        name = service.shown_author(descriptor, message)
        bank_named = descriptor.conversations.staff_shown_as == "first-name" and bool(
            message.staff_name
        )
        return MessageView(
            id=message.id,
            author=AUTHOR_BANK,
            author_name=name,
            text=message.body,
            html=render_message(message.body, hosts),
            sent_at=message.created_at,
            announcement=gettext(NEW_MESSAGE_FROM, name=name)
            if bank_named
            else gettext(NEW_MESSAGE_FROM_BANK),
        )
    if message.author == MessageAuthor.PANEL:
        return MessageView(
            id=message.id,
            author=AUTHOR_PANEL,
            author_name=gettext(service.THE_BANK),
            text=message.body,
            html=render_message(message.body),
            sent_at=message.created_at,
            announcement="",
        )
    return MessageView(
        id=message.id,
        author=AUTHOR_PARTICIPANT,
        author_name=gettext(YOU),
        text=message.body,
        html=render_message(message.body),
        sent_at=message.created_at,
        announcement="",
    )


async def task_names(
    session: AsyncSession, descriptor: Descriptor, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    tasks = await session.scalars(select(PanelTask).where(PanelTask.id.in_(wanted)))
    return {t.id: descriptor.task_name(t.element_id, t.name) for t in tasks}


def _view(
    descriptor: Descriptor,
    conversation: Conversation,
    names: dict[uuid.UUID, str],
    messages: list[MessageView],
    preview: str,
) -> ConversationView:
    question = answer = ""
    entry = conversation.faq_entry
    if entry is not None and 0 <= entry < len(descriptor.faq):
        question = pick(descriptor.faq[entry].question)
        answer = pick(descriptor.faq[entry].answer)
    if len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1].rstrip() + "…"
    return ConversationView(
        id=conversation.id,
        task_id=conversation.task_id,
        task_name=names.get(conversation.task_id, "") if conversation.task_id else "",
        state=conversation.state.value,
        resolution=conversation.resolution.value if conversation.resolution else None,
        unread=service.unread_by_participant(conversation),
        created_at=conversation.created_at,
        last_message_at=conversation.last_message_at,
        preview=preview,
        faq_question=question,
        faq_answer=answer,
        messages=messages,
    )


async def _first_messages(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> dict[uuid.UUID, str]:
    ids = [c.id for c in conversations]
    if not ids:
        return {}
    rows = await session.scalars(
        select(ConversationMessage)
        .where(
            ConversationMessage.conversation_id.in_(ids),
            ConversationMessage.author == MessageAuthor.PARTICIPANT,
        )
        .order_by(ConversationMessage.created_at.desc(), ConversationMessage.id)
    )
    first: dict[uuid.UUID, str] = {}
    for message in rows:
        # Ordered latest first: the last one kept per conversation is its question.
        first[message.conversation_id] = message.body
    return first


async def conversation_list(
    session: AsyncSession, actor: ParticipantActor, descriptor: Descriptor
) -> list[ConversationView]:
    """The participant's conversations, the latest first, without their messages."""
    conversations = await service.of_participant(session, actor)
    names = await task_names(session, descriptor, [c.task_id for c in conversations])
    first = await _first_messages(session, conversations)
    return [_view(descriptor, c, names, [], first.get(c.id, "")) for c in conversations]


async def conversation_thread(
    session: AsyncSession,
    descriptor: Descriptor,
    conversation: Conversation,
    settings: Settings,
) -> ConversationView:
    hosts = allowed_hosts(settings.chat_link_hosts)
    rows = await service.messages(session, conversation)
    names = await task_names(session, descriptor, [conversation.task_id])
    views = [_message_view(descriptor, m, hosts) for m in rows]
    preview = next((m.body for m in rows if m.author == MessageAuthor.PARTICIPANT), "")
    return _view(descriptor, conversation, names, views, preview)


async def participant_role(session: AsyncSession, participant_id: uuid.UUID) -> str:
    return str(
        await session.scalar(select(Participant.role).where(Participant.id == participant_id)) or ""
    )


async def suggestions(
    session: AsyncSession,
    descriptor: Descriptor,
    participant_id: uuid.UUID,
    query: str,
    *,
    typing: bool,
) -> list[Suggestion]:
    """The FAQ entries this participant is shown that match their question."""
    role = await participant_role(session, participant_id)
    return faq_index(descriptor, current_locale(), role).search(query, typing=typing)
