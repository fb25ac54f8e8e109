"""The dashboard's side of the chat: the team's queue, one conversation with its case beside
it, and the answer, take, hand-over and close. panel_core/conversations/service.py decides
who sees and does what, and audits every step with its author."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.conversations import canned, service
from panel_core.conversations.service import QUEUE_UNASSIGNED, QUEUES, ConversationError
from panel_core.conversations.staff_view import conversation_view, queue_rows
from panel_core.db.models import CannedAnswer, Case, Conversation, ConversationState
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import StaffActor
from panel_web.request import client_of
from staff.dependencies import BACKGROUND_HEADER, StaffController, StaffServices, guarded_staff

NOT_FOUND = "Not found"
TAB_NAMES = {
    service.QUEUE_UNASSIGNED: N_("Waiting"),
    service.QUEUE_MINE: N_("Mine"),
    service.QUEUE_ALL: N_("All open"),
    service.QUEUE_CLOSED: N_("Closed"),
}
NOTICES = {
    "sent": N_("Your answer is sent."),
    "taken": N_("The conversation is yours now."),
    "closed": N_("The conversation is closed."),
    "handed-over": N_("The conversation is handed over."),
}
UNKNOWN_ANSWER = N_("Choose one of the canned answers.")
# The request state's key of the navigation's badges (``conversation_badges``).
BADGES_KEY = "panel_conversation_badges"


def _now(services: StaffServices) -> datetime:
    return datetime.fromtimestamp(services.clock.now(), UTC)


async def count_conversations(request: Request[Any, Any, Any]) -> None:
    """The navigation's badges, for every page of the dashboard a signed-in member of staff
    opens: counted here once, so that no page's handler has to know about them."""
    staff = guarded_staff(request)
    if (
        staff is None
        or request.method != "GET"
        or "text/html" not in request.headers.get("accept", "")
    ):
        return
    services: StaffServices = request.app.state.services
    async with services.sessions() as session:
        request.state[BADGES_KEY] = await service.counts(session, staff)


def conversation_badges(request: Request[Any, Any, Any] | None) -> service.QueueCounts | None:
    """For the base template: the counts the hook above read, if it ran for this page."""
    if request is None:
        return None
    found = request.state.get(BADGES_KEY)
    return found if isinstance(found, service.QueueCounts) else None


async def _visible(
    db: AsyncSession, staff: StaffActor, conversation_id: uuid.UUID, *, lock: bool = False
) -> Conversation:
    conversation = await service.find(db, staff, conversation_id, lock=lock)
    if conversation is None:
        raise NotFoundException(NOT_FOUND)
    return conversation


def _back(conversation: Conversation, notice: str) -> Redirect:
    return Redirect(f"/conversations/{conversation.id}?notice={notice}", status_code=303)


class ConversationsController(StaffController):
    include_in_schema = False

    @get("/conversations")
    async def queue(
        self,
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        tab: FromQuery[str] = QUEUE_UNASSIGNED,
        notice: FromQuery[str] = "",
    ) -> Template:
        tab = tab if tab in QUEUES else QUEUE_UNASSIGNED
        counts = {name: len(await service.queue(db, staff, name)) for name in QUEUES}
        message = NOTICES.get(notice)
        return Template(
            "staff/conversations.html.j2",
            context={
                "staff": staff,
                "tab": tab,
                "tabs": [(name, gettext(TAB_NAMES[name]), counts[name]) for name in QUEUES],
                "rows": await queue_rows(db, await service.queue(db, staff, tab)),
                "limit": service.QUEUE_LIMIT,
                "message": gettext(message) if message else "",
                "live_events": "/events/?conversations=1",
            },
        )

    @get("/conversations/{conversation_id:uuid}")
    async def conversation(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        conversation_id: FromPath[uuid.UUID],
        notice: FromQuery[str] = "",
    ) -> Template:
        conversation = await _visible(db, staff, conversation_id)
        if request.headers.get(BACKGROUND_HEADER) != "1":
            # A person opening it, not the page refreshing itself.
            audit.record(
                db,
                audit.CASE_VIEWED,
                case_id=conversation.case_id,
                actor=staff,
                client=client_of(request),
                conversation=str(conversation.id),
            )
        service.mark_read(staff, conversation, _now(services))
        await db.commit()
        message = NOTICES.get(notice)
        return await self._page(
            db, services, staff, conversation, notice=gettext(message) if message else ""
        )

    async def _page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        conversation: Conversation,
        *,
        notice: str = "",
        text: str = "",
        error: ConversationError | None = None,
        error_field: str = "text",
        chosen: str = "",
        typed_username: str = "",
        typed_team: str = "",
    ) -> Template:
        view = await conversation_view(db, conversation)
        if view is None:
            raise NotFoundException(NOT_FOUND)
        answers = await canned.answers_for(db, view.case.case_type, view.participant.locale)
        assignee = conversation.assignee_username
        return Template(
            "staff/conversation.html.j2",
            context={
                "staff": staff,
                "view": view,
                "conversation": conversation,
                "case": view.case,
                "is_open": conversation.state == ConversationState.OPEN,
                "mine": assignee == staff.username,
                "may_answer": assignee in (None, staff.username) or staff.manager,
                "answers": answers,
                "chosen": chosen,
                "teams": await service.known_teams(db, services.settings),
                "max_chars": services.settings.chat_message_max_chars,
                "text": text,
                "typed_username": typed_username,
                "typed_team": typed_team,
                "error": error.text() if error else "",
                "error_field": error_field,
                "message": notice,
                "live_events": f"/events/?conversations=1&conversation={conversation.id}",
            },
            status_code=400 if error else 200,
        )

    @post("/conversations/{conversation_id:uuid}/messages")
    async def answer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        conversation_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        conversation = await _visible(db, staff, conversation_id, lock=True)
        form = await request.form()
        text = str(form.get("text", ""))
        chosen = str(form.get("answer", ""))
        if "use" in form:
            # Without JavaScript: the chosen answer goes into the box, to be read and sent.
            answer = await _canned(db, chosen, conversation)
            if answer is None:
                return await self._page(
                    db,
                    services,
                    staff,
                    conversation,
                    text=text,
                    error=ConversationError(UNKNOWN_ANSWER),
                    error_field="answer",
                )
            return await self._page(
                db, services, staff, conversation, text=answer.text, chosen=chosen
            )
        try:
            await service.post(
                db,
                staff,
                conversation,
                text,
                settings=services.settings,
                now=_now(services),
                redis=services.redis,
                client=client_of(request),
            )
        except ConversationError as refused:
            await db.rollback()
            conversation = await _visible(db, staff, conversation_id)
            return await self._page(
                db, services, staff, conversation, text=text, error=refused, chosen=chosen
            )
        await db.commit()
        return _back(conversation, "sent")

    @post("/conversations/{conversation_id:uuid}/take")
    async def take(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        conversation_id: FromPath[uuid.UUID],
    ) -> Redirect:
        conversation = await _visible(db, staff, conversation_id, lock=True)
        await service.take(db, staff, conversation, redis=services.redis, client=client_of(request))
        await db.commit()
        return _back(conversation, "taken")

    @post("/conversations/{conversation_id:uuid}/hand-over")
    async def hand_over(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        conversation_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        conversation = await _visible(db, staff, conversation_id, lock=True)
        form = await request.form()
        team, username = str(form.get("team", "")), str(form.get("username", ""))
        try:
            await service.hand_over(
                db,
                staff,
                conversation,
                settings=services.settings,
                team=team,
                username=username,
                redis=services.redis,
                client=client_of(request),
            )
        except ConversationError as refused:
            await db.rollback()
            conversation = await _visible(db, staff, conversation_id)
            return await self._page(
                db,
                services,
                staff,
                conversation,
                error=refused,
                error_field="username" if username.strip() else "team",
                typed_username=username,
                typed_team=team,
            )
        await db.commit()
        # It may have left this person's queues: back to them, not to a page now refused.
        return Redirect("/conversations?notice=handed-over", status_code=303)

    @post("/conversations/{conversation_id:uuid}/close")
    async def close(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        conversation_id: FromPath[uuid.UUID],
    ) -> Redirect:
        conversation = await _visible(db, staff, conversation_id, lock=True)
        await service.close(
            db,
            staff,
            conversation,
            now=_now(services),
            redis=services.redis,
            client=client_of(request),
        )
        await db.commit()
        return _back(conversation, "closed")


async def _canned(db: AsyncSession, chosen: str, conversation: Conversation) -> CannedAnswer | None:
    """One of the answers the page offers for this conversation's case type."""
    try:
        answer_id = uuid.UUID(chosen)
    except ValueError:
        return None
    answer = await db.get(CannedAnswer, answer_id)
    case = await db.get(Case, conversation.case_id)
    if answer is None or case is None or answer.case_type != case.case_type:
        return None
    return answer
