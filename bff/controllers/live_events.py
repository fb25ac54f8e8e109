"""Server-sent events for the participant's case: pages refresh when something changes."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from litestar.response import ServerSentEvent
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import OPT_SHOWS, ParticipantContext, ParticipantController
from panel_core.cases import closure
from panel_core.conversations import service
from panel_core.identity.actors import ParticipantActor
from panel_core.notifications.live import case_channel, conversation_channel, participant_channel
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
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        conversation: FromQuery[str] = "",
    ) -> ServerSentEvent:
        # The participant's own channel: their Messages area and badges, never anyone else's.
        names = [case_channel(participant.case_id), participant_channel(participant.participant_id)]
        if conversation:
            names.append(
                conversation_channel(await _own_conversation(db, participant, conversation))
            )
        return update_stream(channels, names, request.app.state.clock, participant.expires_at)


async def _own_conversation(
    db: AsyncSession, participant: ParticipantContext, raw: str
) -> uuid.UUID:
    """A conversation's stream is its participant's alone, and only while the case shows
    them everything (the chat's own rule after closure); otherwise 404, before any event."""
    try:
        conversation_id = uuid.UUID(raw)
    except ValueError as exc:
        raise NotFoundException("Not found") from exc
    if not closure.covers(participant.shows, closure.EVERYTHING):
        raise NotFoundException("Not found")
    actor = ParticipantActor(case_id=participant.case_id, participant_id=participant.participant_id)
    found = await service.find(db, actor, conversation_id)
    if found is None:
        raise NotFoundException("Not found")
    # The session is not kept open for the length of the stream.
    await db.close()
    return found.id
