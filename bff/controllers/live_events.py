"""Server-sent events for the participant's case: pages refresh when something changes."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from bff.dependencies import OPT_SHOWS, ParticipantContext, ParticipantController
from panel_core.cases import closure
from panel_core.notifications.live import case_channel
from panel_web.live import update_stream


class LiveEventsController(ParticipantController):
    path = "/events"
    include_in_schema = False
    opt = {OPT_SHOWS: closure.STATUS}  # noqa: RUF012 - Litestar reads class attributes

    @get("/")
    async def events(
        self,
        request: Request[Any, Any, State],
        channels: NamedDependency[ChannelsPlugin],
        participant: NamedDependency[ParticipantContext],
    ) -> ServerSentEvent:
        return update_stream(
            channels,
            [case_channel(participant.case_id)],
            request.app.state.clock,
            participant.expires_at,
        )
