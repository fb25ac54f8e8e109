"""Server-sent events for the dashboard: an inbox refreshes when any staff task changes,
a case page when its case does."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import ServerSentEvent

from panel_core.notifications.live import STAFF_CHANNEL, case_channel
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
        case: FromQuery[uuid.UUID | None] = None,
    ) -> ServerSentEvent:
        settings = services.settings
        # The stream ends when the session would without activity: watching is not working.
        ends_at = min(
            float(request.session[SESSION_CREATED])
            + settings.staff_session_absolute_timeout_seconds,
            float(request.session[SESSION_LAST_SEEN]) + settings.staff_session_idle_timeout_seconds,
        )
        names = [STAFF_CHANNEL] + ([case_channel(case)] if case else [])
        return update_stream(channels, names, services.clock, ends_at)
