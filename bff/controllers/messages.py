"""The Messages area: a participant's conversations with the bank about their case.

Pages work without JavaScript (post, redirect, a refresh link); with it the thread refreshes
live and FAQ answers are offered while the question is typed (static/js/messages.js). A
conversation is only ever its own participant's: anyone else's, in this case or another,
answers 404 like one that does not exist. After the case closes these routes are reached
only while the case type's rule still shows everything.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_429_TOO_MANY_REQUESTS
from sqlalchemy.ext.asyncio import AsyncSession

from bff.controllers.participant_pages import session_context
from bff.dependencies import ParticipantContext, ParticipantController
from panel_core.cases import case_types
from panel_core.conversations import service
from panel_core.conversations.faq import Suggestion
from panel_core.conversations.participant_views import (
    actor_of,
    conversation_list,
    conversation_thread,
    participant_role,
    suggestions,
    task_names,
)
from panel_core.db.models import Conversation, PanelTask
from panel_core.identity.actors import ParticipantActor
from panel_core.tasks import work
from panel_web.forms import form_values
from panel_web.request import client_of

NOT_FOUND = "Not found"
TEXT_FIELD = "text"


def actor(participant: ParticipantContext) -> ParticipantActor:
    return actor_of(participant.case_id, participant.participant_id)


def now_of(request: Request[Any, Any, State]) -> datetime:
    return datetime.fromtimestamp(request.app.state.clock.now(), UTC)


def parse_uuid(raw: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


async def attached_task(
    db: AsyncSession, participant: ParticipantContext, raw: object
) -> PanelTask | None:
    """The task a question is about; another's task, or none that exists, is a 404."""
    if raw in (None, ""):
        return None
    task_id = parse_uuid(raw)
    task = await work.open_task(db, actor(participant), task_id) if task_id else None
    if task is None:
        raise NotFoundException(NOT_FOUND)
    return task


async def own_conversation(
    db: AsyncSession, participant: ParticipantContext, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await service.find(db, actor(participant), conversation_id)
    if conversation is None:
        raise NotFoundException(NOT_FOUND)
    return conversation


def checked_text(raw: str, request: Request[Any, Any, State]) -> tuple[str, dict[str, str]]:
    """The message as it would be kept, or the error shown on its field."""
    try:
        return service.message_text(raw, request.app.state.settings.chat_message_max_chars), {}
    except service.ConversationError as exc:
        return "", {TEXT_FIELD: exc.text()}


async def rate_error(
    request: Request[Any, Any, State], participant: ParticipantContext
) -> dict[str, str]:
    state = request.app.state
    try:
        await service.check_rate(
            state.redis, participant.participant_id, state.settings, state.clock.now()
        )
    except service.ConversationError as exc:
        return {TEXT_FIELD: exc.text()}
    return {}


class MessagesController(ParticipantController):
    path = "/messages"
    include_in_schema = False

    @get("/")
    async def list_page(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template:
        return await _list_page(request, db, participant)

    @get("/new")
    async def new_page(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task: FromQuery[str] = "",
    ) -> Template:
        attached = await attached_task(db, participant, task)
        return await _new_page(request, db, participant, attached)

    @get("/suggestions")
    async def faq_suggestions(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        q: FromQuery[str] = "",
        typing: FromQuery[str] = "",
    ) -> dict[str, list[dict[str, Any]]]:
        descriptor = await case_types.of_case_id(db, participant.case_id)
        found = await suggestions(
            db, descriptor, participant.participant_id, q[:2000], typing=typing == "1"
        )
        return {
            "suggestions": [
                {"entry": s.entry, "question": s.question, "answer": s.answer} for s in found
            ]
        }

    @post("/", status_code=200)
    async def ask(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template | Redirect:
        form = form_values(await request.form())
        raw = str(form.get(TEXT_FIELD, ""))
        task = await attached_task(db, participant, form.get("task"))
        text, errors = checked_text(raw, request)
        if errors:
            return await _new_page(request, db, participant, task, raw, errors, status=400)
        if form.get("faq_seen") != "1":
            descriptor = await case_types.of_case_id(db, participant.case_id)
            found = await suggestions(
                db, descriptor, participant.participant_id, text, typing=False
            )
            if found:
                return await _new_page(request, db, participant, task, raw, suggested=found)
        errors = await rate_error(request, participant)
        if errors:
            return await _new_page(
                request, db, participant, task, raw, errors, status=HTTP_429_TOO_MANY_REQUESTS
            )
        conversation = await service.start(
            db,
            actor(participant),
            text,
            settings=request.app.state.settings,
            now=now_of(request),
            task_id=task.id if task else None,
            redis=request.app.state.redis,
            client=client_of(request),
        )
        await db.commit()
        return Redirect(f"/messages/{conversation.id}", status_code=303)

    @post("/faq", status_code=200)
    async def answered_by_faq(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template | Redirect:
        form = form_values(await request.form())
        raw = str(form.get(TEXT_FIELD, ""))
        task = await attached_task(db, participant, form.get("task"))
        text, errors = checked_text(raw, request)
        if errors:
            return await _new_page(request, db, participant, task, raw, errors, status=400)
        try:
            entry = int(str(form.get("entry", "")))
        except ValueError:
            entry = -1
        errors = await rate_error(request, participant)
        if errors:
            return await _new_page(
                request, db, participant, task, raw, errors, status=HTTP_429_TOO_MANY_REQUESTS
            )
        try:
            conversation = await service.resolve_by_faq(
                db,
                actor(participant),
                text,
                entry,
                role=await participant_role(db, participant.participant_id),
                settings=request.app.state.settings,
                now=now_of(request),
                task_id=task.id if task else None,
                client=client_of(request),
            )
        except service.ConversationError as exc:
            return await _new_page(
                request, db, participant, task, raw, {TEXT_FIELD: exc.text()}, status=400
            )
        await db.commit()
        return Redirect(f"/messages/{conversation.id}", status_code=303)

    @get("/{conversation_id:uuid}")
    async def thread(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        conversation_id: FromPath[uuid.UUID],
    ) -> Template:
        conversation = await own_conversation(db, participant, conversation_id)
        # Open on the screen is read, the page's background refresh included.
        service.mark_read(actor(participant), conversation, now_of(request))
        await db.commit()
        return await _thread_page(request, db, participant, conversation)

    @post("/{conversation_id:uuid}", status_code=200)
    async def reply(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        conversation_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        conversation = await own_conversation(db, participant, conversation_id)
        raw = str(form_values(await request.form()).get(TEXT_FIELD, ""))
        text, errors = checked_text(raw, request)
        status = 400
        if not errors:
            errors = await rate_error(request, participant)
            status = HTTP_429_TOO_MANY_REQUESTS
        if errors:
            return await _thread_page(
                request, db, participant, conversation, raw, errors, status=status
            )
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
        return Redirect(f"/messages/{conversation.id}", status_code=303)


def _common(request: Request[Any, Any, State], participant: ParticipantContext) -> dict[str, Any]:
    return {
        "max_chars": request.app.state.settings.chat_message_max_chars,
        "participant_session": session_context(request, participant),
    }


async def _list_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
) -> Template:
    descriptor = await case_types.of_case_id(db, participant.case_id)
    return Template(
        "messages.html.j2",
        context={
            "conversations": await conversation_list(db, actor(participant), descriptor),
            "task": None,
            "text": "",
            "errors": {},
            **_common(request, participant),
        },
    )


async def _new_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    task: PanelTask | None,
    text: str = "",
    errors: dict[str, str] | None = None,
    *,
    suggested: list[Suggestion] | None = None,
    status: int = 200,
) -> Template:
    descriptor = await case_types.of_case_id(db, participant.case_id)
    names = await task_names(db, descriptor, [task.id] if task else [])
    return Template(
        "message_new.html.j2",
        context={
            "task": {"id": task.id, "name": names.get(task.id, "")} if task else None,
            "text": text,
            "errors": errors or {},
            "suggested": suggested or [],
            **_common(request, participant),
        },
        status_code=status,
    )


async def _thread_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    conversation: Conversation,
    text: str = "",
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
) -> Template:
    descriptor = await case_types.of_case_id(db, participant.case_id)
    view = await conversation_thread(db, descriptor, conversation, request.app.state.settings)
    return Template(
        "message_thread.html.j2",
        context={
            "conversation": view,
            "text": text,
            "errors": errors or {},
            "live_events": f"/events/?conversation={conversation.id}",
            **_common(request, participant),
        },
        status_code=status,
    )
