"""The chat's use cases, for participants and staff alike: each takes its actor, and one rule
decides who sees and does what.

A conversation is one participant's with the bank; no other participant ever sees it, and
the bank's side reads as "the bank" or as the employee's first name, as the case type says.
Every message is audited with its author and the SHA-256 of its text (never the text).
Live updates name the conversation only, and are published once the transaction commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import metrics
from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor
from panel_core.db.models import (
    Conversation,
    ConversationMessage,
    ConversationResolution,
    ConversationState,
    MessageAuthor,
    PanelTask,
    Participant,
    StaffGroupMember,
)
from panel_core.db.transaction_hooks import on_commit
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import Actor, Client, ParticipantActor, StaffActor
from panel_core.notifications import live
from panel_core.plain_text import plain_text
from panel_core.settings import Settings
from panel_core.tasks import work

MESSAGE_EMPTY = N_("Write your message before sending it.")
MESSAGE_TOO_LONG = N_("A message can be at most %(limit)s characters long.")
TOO_MANY_MESSAGES = N_(
    "You have sent many messages in a short time. Wait a few minutes before sending another."
)
UNKNOWN_TASK = N_("This step is not one of your tasks.")
UNKNOWN_FAQ = N_("This answer is not one of the questions and answers of your case.")
UNKNOWN_TEAM = N_("Choose a team or a colleague to hand the conversation over to.")
UNKNOWN_COLLEAGUE = N_("No colleague with this user name has signed in to the dashboard.")
NOT_ASSIGNED = N_("Take the conversation before answering it.")

# How the bank's answers read when the case type shows no names.
THE_BANK = N_("The bank")


class ConversationError(ValueError):
    """Nothing was changed; ``message`` (a msgid) says why, for the page."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values

    def text(self) -> str:
        return gettext(self.message, **self.values)


def message_text(raw: str, limit: int) -> str:
    """The text as it is kept: plain, line breaks as typed, no other control characters."""
    kept = plain_text(raw)
    if not kept:
        raise ConversationError(MESSAGE_EMPTY)
    if len(kept) > limit:
        raise ConversationError(MESSAGE_TOO_LONG, limit=limit)
    return kept


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def may_see(actor: Actor, conversation: Conversation) -> bool:
    """A participant sees their own conversations only; staff those of their teams, those
    assigned to them, and team managers all."""
    if isinstance(actor, ParticipantActor):
        return (
            conversation.case_id == actor.case_id
            and conversation.participant_id == actor.participant_id
        )
    return (
        actor.manager
        or conversation.assignee_username == actor.username
        or conversation.team in actor.groups
    )


async def find(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID, *, lock: bool = False
) -> Conversation | None:
    """The conversation if ``actor`` may see it; None as for one that does not exist."""
    query = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        query = query.with_for_update()
    conversation = await session.scalar(query)
    if conversation is None or not may_see(actor, conversation):
        return None
    return conversation


def team_of(descriptor: Descriptor, settings: Settings) -> str:
    return descriptor.conversations.team or settings.chat_default_team


def rate_key(participant_id: uuid.UUID, window: int) -> str:
    return f"panel:chat-rate:{participant_id}:{window}"


async def check_rate(
    redis: Redis, participant_id: uuid.UUID, settings: Settings, now: float
) -> None:
    """Counts a participant's message against their limit, refusing one over it. Without
    Redis the message goes through: a chat that stops with the cache would lose questions."""
    window_seconds = settings.chat_rate_limit_window_seconds
    key = rate_key(participant_id, int(now // window_seconds))
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds * 2)
            count, _ = await pipe.execute()
    except RedisError:
        return
    if int(count) > settings.chat_rate_limit_messages:
        raise ConversationError(TOO_MANY_MESSAGES)


def _publish(session: AsyncSession, redis: Redis | None, conversation: Conversation) -> None:
    if redis is None:
        return
    conversation_id, participant_id, case_id = (
        conversation.id,
        conversation.participant_id,
        conversation.case_id,
    )

    async def tell() -> None:
        await live.publish_conversation_update(redis, conversation_id, participant_id, case_id)

    on_commit(session, tell)


async def _task_of(
    session: AsyncSession, actor: ParticipantActor, task_id: uuid.UUID | None
) -> PanelTask | None:
    if task_id is None:
        return None
    task = await work.open_task(session, actor, task_id)
    if task is None:
        raise ConversationError(UNKNOWN_TASK)
    return task


def _add_message(
    session: AsyncSession,
    conversation: Conversation,
    author: MessageAuthor,
    body: str,
    now: datetime,
    staff: StaffActor | None = None,
) -> ConversationMessage:
    message = ConversationMessage(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        case_id=conversation.case_id,
        author=author,
        staff_subject=staff.subject if staff else None,
        staff_username=staff.username if staff else None,
        staff_name=staff.name if staff else None,
        body=body,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    if author == MessageAuthor.PARTICIPANT:
        conversation.last_participant_message_at = now
        conversation.participant_read_at = now
    elif author == MessageAuthor.STAFF:
        conversation.last_staff_message_at = now
        conversation.staff_read_at = now
    return message


async def _open(
    session: AsyncSession,
    actor: ParticipantActor,
    body: str,
    task: PanelTask | None,
    team: str,
    now: datetime,
) -> tuple[Conversation, ConversationMessage]:
    conversation = Conversation(
        id=uuid.uuid4(),
        case_id=actor.case_id,
        participant_id=actor.participant_id,
        task_id=task.id if task else None,
        team=team,
        state=ConversationState.OPEN,
        created_at=now,
        last_message_at=now,
    )
    session.add(conversation)
    await session.flush()
    return conversation, _add_message(session, conversation, MessageAuthor.PARTICIPANT, body, now)


async def start(
    session: AsyncSession,
    actor: ParticipantActor,
    text: str,
    *,
    settings: Settings,
    now: datetime,
    task_id: uuid.UUID | None = None,
    redis: Redis | None = None,
    client: Client | None = None,
) -> Conversation:
    """A participant's new question to the bank, into the case type's team's queue."""
    body = message_text(text, settings.chat_message_max_chars)
    task = await _task_of(session, actor, task_id)
    descriptor = await case_types.of_case_id(session, actor.case_id)
    conversation, message = await _open(
        session, actor, body, task, team_of(descriptor, settings), now
    )
    audit.record(
        session,
        audit.CONVERSATION_STARTED,
        actor=actor,
        client=client,
        conversation=str(conversation.id),
        task=str(task.id) if task else None,
        team=conversation.team,
    )
    _audit_message(session, actor, conversation, message, client)
    metrics.CONVERSATIONS.labels(ConversationResolution.BANK.value).inc()
    _publish(session, redis, conversation)
    return conversation


async def resolve_by_faq(
    session: AsyncSession,
    actor: ParticipantActor,
    text: str,
    entry: int,
    *,
    role: str,
    settings: Settings,
    now: datetime,
    task_id: uuid.UUID | None = None,
    client: Client | None = None,
) -> Conversation:
    """The participant found their answer in the FAQ: the question is kept with the entry
    that answered it, closed, and no employee is asked."""
    body = message_text(text, settings.chat_message_max_chars)
    task = await _task_of(session, actor, task_id)
    descriptor = await case_types.of_case_id(session, actor.case_id)
    if not 0 <= entry < len(descriptor.faq) or (
        descriptor.faq[entry].roles and role not in descriptor.faq[entry].roles
    ):
        raise ConversationError(UNKNOWN_FAQ)
    conversation, message = await _open(
        session, actor, body, task, team_of(descriptor, settings), now
    )
    conversation.state = ConversationState.CLOSED
    conversation.resolution = ConversationResolution.FAQ
    conversation.faq_entry = entry
    conversation.closed_at = now
    audit.record(
        session,
        audit.CONVERSATION_FAQ_RESOLVED,
        actor=actor,
        client=client,
        conversation=str(conversation.id),
        faq_entry=entry,
        task=str(task.id) if task else None,
    )
    _audit_message(session, actor, conversation, message, client)
    metrics.CONVERSATIONS.labels(ConversationResolution.FAQ.value).inc()
    return conversation


def _audit_message(
    session: AsyncSession,
    actor: Actor,
    conversation: Conversation,
    message: ConversationMessage,
    client: Client | None,
) -> None:
    audit.record(
        session,
        audit.CONVERSATION_MESSAGE,
        case_id=conversation.case_id,
        actor=actor,
        client=client,
        conversation=str(conversation.id),
        message=str(message.id),
        author=message.author.value,
        sha256=_digest(message.body),
    )


async def post(
    session: AsyncSession,
    actor: Actor,
    conversation: Conversation,
    text: str,
    *,
    settings: Settings,
    now: datetime,
    redis: Redis | None = None,
    client: Client | None = None,
) -> ConversationMessage:
    """A message into a conversation ``actor`` may see. A participant writing into a closed
    conversation opens it again, back to whoever had it; a member of staff answering an
    unassigned one takes it."""
    body = message_text(text, settings.chat_message_max_chars)
    if not may_see(actor, conversation):
        raise PermissionError("not this actor's conversation")
    if isinstance(actor, StaffActor):
        if conversation.assignee_username is None:
            _assign(conversation, actor.subject, actor.username, actor.name)
        elif conversation.assignee_username != actor.username and not actor.manager:
            raise ConversationError(NOT_ASSIGNED)
        conversation.resolution = ConversationResolution.BANK
        message = _add_message(session, conversation, MessageAuthor.STAFF, body, now, actor)
    else:
        message = _add_message(session, conversation, MessageAuthor.PARTICIPANT, body, now)
    if conversation.state == ConversationState.CLOSED:
        conversation.state = ConversationState.OPEN
        conversation.closed_at = None
        if conversation.resolution == ConversationResolution.FAQ:
            # The FAQ did not answer it after all: the bank is asked now.
            conversation.resolution = None
            metrics.CONVERSATIONS.labels(ConversationResolution.BANK.value).inc()
    _audit_message(session, actor, conversation, message, client)
    _publish(session, redis, conversation)
    return message


def _assign(conversation: Conversation, subject: str | None, username: str, name: str) -> None:
    conversation.assignee_subject = subject
    conversation.assignee_username = username
    conversation.assignee_name = name


async def take(
    session: AsyncSession,
    staff: StaffActor,
    conversation: Conversation,
    *,
    redis: Redis | None = None,
    client: Client | None = None,
) -> None:
    previous = conversation.assignee_username
    _assign(conversation, staff.subject, staff.username, staff.name)
    audit.record(
        session,
        audit.CONVERSATION_TAKEN,
        case_id=conversation.case_id,
        actor=staff,
        client=client,
        conversation=str(conversation.id),
        previous=previous,
    )
    _publish(session, redis, conversation)


async def known_teams(session: AsyncSession, settings: Settings) -> list[str]:
    """The groups a conversation may be handed over to: the teams staff signed in from, the
    case types' teams and the default one."""
    groups = set(await session.scalars(select(StaffGroupMember.group).distinct()))
    for descriptor in (await case_types.deployed(session)).values():
        groups.add(team_of(descriptor, settings))
    groups.add(settings.chat_default_team)
    return sorted(groups)


async def hand_over(
    session: AsyncSession,
    staff: StaffActor,
    conversation: Conversation,
    *,
    settings: Settings,
    team: str = "",
    username: str = "",
    redis: Redis | None = None,
    client: Client | None = None,
) -> None:
    """To another team's queue (unassigned there), or to a colleague (in their team)."""
    team, username = team.strip(), username.strip()
    if username:
        colleague = await session.scalar(
            select(StaffGroupMember)
            .where(StaffGroupMember.username == username)
            .order_by(StaffGroupMember.seen_at.desc())
            .limit(1)
        )
        if colleague is None:
            raise ConversationError(UNKNOWN_COLLEAGUE)
        _assign(conversation, None, colleague.username, colleague.name)
        if team:
            conversation.team = team
    elif team and team in await known_teams(session, settings):
        conversation.team = team
        conversation.assignee_subject = conversation.assignee_username = None
        conversation.assignee_name = None
    else:
        raise ConversationError(UNKNOWN_TEAM)
    audit.record(
        session,
        audit.CONVERSATION_HANDED_OVER,
        case_id=conversation.case_id,
        actor=staff,
        client=client,
        conversation=str(conversation.id),
        team=conversation.team,
        to=conversation.assignee_username,
    )
    _publish(session, redis, conversation)


async def close(
    session: AsyncSession,
    staff: StaffActor,
    conversation: Conversation,
    *,
    now: datetime,
    redis: Redis | None = None,
    client: Client | None = None,
) -> None:
    if conversation.state == ConversationState.CLOSED:
        return
    conversation.state = ConversationState.CLOSED
    conversation.closed_at = now
    audit.record(
        session,
        audit.CONVERSATION_CLOSED,
        case_id=conversation.case_id,
        actor=staff,
        client=client,
        conversation=str(conversation.id),
    )
    _publish(session, redis, conversation)


def mark_read(actor: Actor, conversation: Conversation, now: datetime) -> None:
    """What ``actor``'s side has now seen of the conversation."""
    if isinstance(actor, ParticipantActor):
        conversation.participant_read_at = now
    elif may_see(actor, conversation) and (
        conversation.assignee_username in (None, actor.username)
    ):
        # A colleague or manager looking in does not read it for the one who has it.
        conversation.staff_read_at = now


def unread_by_participant(conversation: Conversation) -> bool:
    last, read = (
        _aware(conversation.last_staff_message_at),
        _aware(conversation.participant_read_at),
    )
    return last is not None and (read is None or read < last)


def unread_by_staff(conversation: Conversation) -> bool:
    last, read = (
        _aware(conversation.last_participant_message_at),
        _aware(conversation.staff_read_at),
    )
    return (
        conversation.state == ConversationState.OPEN
        and last is not None
        and (read is None or read < last)
    )


async def messages(session: AsyncSession, conversation: Conversation) -> list[ConversationMessage]:
    return list(
        await session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation.id)
            .order_by(ConversationMessage.created_at, ConversationMessage.id)
        )
    )


async def of_participant(session: AsyncSession, actor: ParticipantActor) -> list[Conversation]:
    """The participant's conversations, the latest first."""
    return list(
        await session.scalars(
            select(Conversation)
            .where(
                Conversation.case_id == actor.case_id,
                Conversation.participant_id == actor.participant_id,
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id)
        )
    )


async def of_case(session: AsyncSession, case_id: uuid.UUID) -> list[Conversation]:
    return list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.case_id == case_id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )


def shown_author(descriptor: Descriptor, message: ConversationMessage) -> str:
    """Who a message is from, as the participant reads it (current language)."""
    if message.author != MessageAuthor.STAFF:
        return ""
    if descriptor.conversations.staff_shown_as == "first-name" and message.staff_name:
        return message.staff_name.split()[0]
    return gettext(THE_BANK)


# The dashboard's queue.
QUEUE_UNASSIGNED = "unassigned"
QUEUE_MINE = "mine"
QUEUE_ALL = "all"
QUEUE_CLOSED = "closed"
QUEUES = (QUEUE_UNASSIGNED, QUEUE_MINE, QUEUE_ALL, QUEUE_CLOSED)
QUEUE_LIMIT = 200


async def queue(session: AsyncSession, staff: StaffActor, tab: str) -> list[Conversation]:
    """One tab of the queue: waiting ones oldest first, the others latest first."""
    query = select(Conversation)
    if not staff.manager:
        query = query.where(
            or_(
                Conversation.team.in_(sorted(staff.groups)),
                Conversation.assignee_username == staff.username,
            )
        )
    if tab == QUEUE_UNASSIGNED:
        query = query.where(
            Conversation.state == ConversationState.OPEN,
            Conversation.assignee_username.is_(None),
        ).order_by(Conversation.last_message_at, Conversation.id)
    elif tab == QUEUE_MINE:
        query = query.where(
            Conversation.state == ConversationState.OPEN,
            Conversation.assignee_username == staff.username,
        ).order_by(Conversation.last_message_at.desc(), Conversation.id)
    elif tab == QUEUE_CLOSED:
        query = query.where(Conversation.state == ConversationState.CLOSED).order_by(
            Conversation.last_message_at.desc(), Conversation.id
        )
    else:
        query = query.where(Conversation.state == ConversationState.OPEN).order_by(
            Conversation.last_message_at.desc(), Conversation.id
        )
    return list(await session.scalars(query.limit(QUEUE_LIMIT)))


@dataclass(frozen=True, slots=True)
class QueueCounts:
    # Open, nobody's, in one of my teams.
    unassigned: int
    # Mine, with a message I have not read.
    mine_unread: int


async def counts(session: AsyncSession, staff: StaffActor) -> QueueCounts:
    """The dashboard's badges."""
    unassigned = select(func.count()).where(
        Conversation.state == ConversationState.OPEN,
        Conversation.assignee_username.is_(None),
    )
    if not staff.manager:
        unassigned = unassigned.where(Conversation.team.in_(sorted(staff.groups)))
    mine_unread = select(func.count()).where(
        Conversation.state == ConversationState.OPEN,
        Conversation.assignee_username == staff.username,
        Conversation.last_participant_message_at.is_not(None),
        or_(
            Conversation.staff_read_at.is_(None),
            Conversation.staff_read_at < Conversation.last_participant_message_at,
        ),
    )
    return QueueCounts(
        unassigned=int(await session.scalar(unassigned) or 0),
        mine_unread=int(await session.scalar(mine_unread) or 0),
    )


async def participant_unread(session: AsyncSession, actor: ParticipantActor) -> int:
    """How many of the participant's conversations have an answer they have not read."""
    found = await session.scalar(
        select(func.count()).where(
            Conversation.case_id == actor.case_id,
            Conversation.participant_id == actor.participant_id,
            Conversation.last_staff_message_at.is_not(None),
            or_(
                Conversation.participant_read_at.is_(None),
                Conversation.participant_read_at < Conversation.last_staff_message_at,
            ),
        )
    )
    return int(found or 0)


async def participant_names(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> dict[uuid.UUID, Participant]:
    ids = {c.participant_id for c in conversations}
    if not ids:
        return {}
    rows = await session.scalars(select(Participant).where(Participant.id.in_(ids)))
    return {p.id: p for p in rows}
