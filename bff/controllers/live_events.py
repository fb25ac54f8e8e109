"""Server-sent events for the participant's case: pages refresh when something changes.

The pages are complete without JavaScript; ``static/js/live-updates.js`` listens here and
reloads the parts of the page marked ``data-live-region``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from bff.dependencies import ParticipantContext, ParticipantController
from panel_core.live import case_channel

KEEPALIVE_SECONDS = 15.0
EXPIRY_CHECK_SECONDS = 1.0


class LiveEventsController(ParticipantController):
    path = "/events"
    include_in_schema = False

    @get("/")
    async def events(
        self,
        request: Request[Any, Any, State],
        channels: NamedDependency[ChannelsPlugin],
        participant: NamedDependency[ParticipantContext],
    ) -> ServerSentEvent:
        clock = request.app.state.clock
        # The stream ends when the session would: an open tab does not keep a session alive.
        ends_at = participant.expires_at

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            async with channels.start_subscription([case_channel(participant.case_id)]) as sub:

                async def pump() -> None:
                    async for raw in sub.iter_events():
                        await queue.put(raw)

                # The subscription is read in its own task: waiting on the queue with a timeout
                # is safe to cancel, waiting on the subscriber's generator is not.
                pump_task = asyncio.create_task(pump())
                last_sent = time.monotonic()
                try:
                    while clock.now() < ends_at:
                        try:
                            raw = await asyncio.wait_for(queue.get(), timeout=EXPIRY_CHECK_SECONDS)
                        except TimeoutError:
                            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                                last_sent = time.monotonic()
                                yield ServerSentEventMessage(comment="keepalive")
                            continue
                        kind = str(json.loads(raw).get("kind", "changed"))
                        last_sent = time.monotonic()
                        yield ServerSentEventMessage(
                            event="case-update", data=json.dumps({"kind": kind})
                        )
                    yield ServerSentEventMessage(event="session-ended", data="{}")
                finally:
                    pump_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump_task

        return ServerSentEvent(
            stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
