"""Server-sent events for the dashboard: an inbox refreshes when any staff task changes,
a case page when its case does, the conversation queue and badges when any conversation
does, and a conversation's page when it does (for whoever may see it: 404 otherwise)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from litestar.response import ServerSentEvent
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.conversations import service as chat
from panel_core.identity.actors import StaffActor
from panel_core.notifications.live import (
    STAFF_CHANNEL,
    STAFF_CONVERSATIONS_CHANNEL,
    case_channel,
    conversation_channel,
)
from panel_web.live import update_stream
from staff.dependencies import (
    SESSION_CREATED,
    SESSION_LAST_SEEN,
    StaffController,
    StaffServices,
)


class StaffEventsController(StaffController):
    path = "/events"
    include_in_schema = False

    @get("/")
    async def events(
        self,
        request: Request[Any, Any, Any],
        channels: NamedDependency[ChannelsPlugin],
        services: NamedDependency[StaffServices],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        case: FromQuery[uuid.UUID | None] = None,
        conversations: FromQuery[bool] = False,
        conversation: FromQuery[uuid.UUID | None] = None,
    ) -> ServerSentEvent:
        settings = services.settings
        # The stream ends when the session would without activity: watching is not working.
        ends_at = min(
            float(request.session[SESSION_CREATED])
            + settings.staff_session_absolute_timeout_seconds,
            float(request.session[SESSION_LAST_SEEN]) + settings.staff_session_idle_timeout_seconds,
        )
        names = [STAFF_CHANNEL] + ([case_channel(case)] if case else [])
        if conversations:
            names.append(STAFF_CONVERSATIONS_CHANNEL)
        if conversation:
            if await chat.find(db, staff, conversation) is None:
                raise NotFoundException("Not found")
            names.append(conversation_channel(conversation))
        # The stream may stay open for hours: it must not hold a database connection.
        await db.close()
        return update_stream(channels, names, services.clock, ends_at)
