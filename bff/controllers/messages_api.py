"""JSON API of the Messages area: the same conversations, rules and limits as its pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_429_TOO_MANY_REQUESTS
from sqlalchemy.ext.asyncio import AsyncSession

from bff.controllers.messages import NOT_FOUND, TEXT_FIELD, actor, now_of, own_conversation
from bff.dependencies import ParticipantContext, ParticipantController
from panel_core.cases import case_types
from panel_core.conversations import service
from panel_core.conversations.participant_views import (
    ConversationView,
    conversation_list,
    conversation_thread,
)
from panel_core.db.models import Conversation
from panel_core.tasks import work
from panel_web.request import client_of


class MessageOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    # "participant", "bank" or "panel".
    author: str
    author_name: str
    text: str
    sent_at: datetime


class ConversationOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    state: str
    # "faq" when the FAQ answered it, "bank" once the bank did; null while nobody has.
    resolution: str | None
    task_id: uuid.UUID | None
    task_name: str
    unread: bool
    created_at: datetime
    last_message_at: datetime
    preview: str
    faq_question: str = ""
    faq_answer: str = ""
    messages: list[MessageOut] = msgspec.field(default_factory=list)


class ConversationIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    text: str
    task_id: uuid.UUID | None = None


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


def to_out(view: ConversationView) -> ConversationOut:
    return ConversationOut(
        id=view.id,
        state=view.state,
        resolution=view.resolution,
        task_id=view.task_id,
        task_name=view.task_name,
        unread=view.unread,
        created_at=view.created_at,
        last_message_at=view.last_message_at,
        preview=view.preview,
        faq_question=view.faq_question,
        faq_answer=view.faq_answer,
        messages=[
            MessageOut(
                id=m.id, author=m.author, author_name=m.author_name, text=m.text, sent_at=m.sent_at
            )
            for m in view.messages
        ],
    )


def _refused(exc: service.ConversationError) -> ClientException:
    status = HTTP_429_TOO_MANY_REQUESTS if exc.message == service.TOO_MANY_MESSAGES else 400
    return ClientException(
        detail=exc.text(), status_code=status, extra={"errors": {TEXT_FIELD: exc.text()}}
    )


async def _checked(
    request: Request[Any, Any, State], participant: ParticipantContext, raw: str
) -> str:
    state = request.app.state
    try:
        text = service.message_text(raw, state.settings.chat_message_max_chars)
        await service.check_rate(
            state.redis, participant.participant_id, state.settings, state.clock.now()
        )
    except service.ConversationError as exc:
        raise _refused(exc) from exc
    return text


async def _detail(
    request: Request[Any, Any, State], db: AsyncSession, conversation: Conversation
) -> ConversationOut:
    descriptor = await case_types.of_case_id(db, conversation.case_id)
    return to_out(
        await conversation_thread(db, descriptor, conversation, request.app.state.settings)
    )


class ParticipantConversationsApiController(ParticipantController):
    path = "/api/participant/conversations"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes

    @get("/")
    async def list_conversations(
        self, db: NamedDependency[AsyncSession], participant: NamedDependency[ParticipantContext]
    ) -> list[ConversationOut]:
        descriptor = await case_types.of_case_id(db, participant.case_id)
        return [
            to_out(view) for view in await conversation_list(db, actor(participant), descriptor)
        ]

    @get("/{conversation_id:uuid}")
    async def get_conversation(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        conversation_id: FromPath[uuid.UUID],
    ) -> ConversationOut:
        conversation = await own_conversation(db, participant, conversation_id)
        service.mark_read(actor(participant), conversation, now_of(request))
        await db.commit()
        return await _detail(request, db, conversation)

    @post("/", status_code=HTTP_201_CREATED)
    async def start_conversation(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        data: JSONBody[ConversationIn],
    ) -> ConversationOut:
        if data.task_id is not None and (
            await work.open_task(db, actor(participant), data.task_id) is None
        ):
            raise NotFoundException(NOT_FOUND)
        text = await _checked(request, participant, data.text)
        try:
            conversation = await service.start(
                db,
                actor(participant),
                text,
                settings=request.app.state.settings,
                now=now_of(request),
                task_id=data.task_id,
                redis=request.app.state.redis,
                client=client_of(request),
            )
        except service.ConversationError as exc:
            raise _refused(exc) from exc
        await db.commit()
        return await _detail(request, db, conversation)

    @post("/{conversation_id:uuid}/messages", status_code=HTTP_201_CREATED)
    async def send_message(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
    ) -> ConversationOut:
        conversation = await own_conversation(db, participant, conversation_id)
        text = await _checked(request, participant, data.text)
        await service.post(
            db,
            actor(participant),
            conversation,
            text,
            settings=request.app.state.settings,
            now=now_of(request),
            redis=request.app.state.redis,
            client=client_of(request),
        )
        await db.commit()
        return await _detail(request, db, conversation)
