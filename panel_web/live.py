"""Server-sent events: "something changed", from Redis pub/sub to an open page.

The pages are complete without JavaScript; ``static/js/live-updates.js`` listens and
reloads the parts of the page marked ``data-live-region``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Sequence

from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEvent, ServerSentEventMessage

from panel_core.clock import Clock

KEEPALIVE_SECONDS = 15.0
EXPIRY_CHECK_SECONDS = 1.0


def update_stream(
    channels: ChannelsPlugin, names: Sequence[str], clock: Clock, ends_at: float
) -> ServerSentEvent:
    """``case-update`` events for every message on the channels until ``ends_at``; the stream
    ends when the session would, so an open tab does not keep a session alive."""

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        async with channels.start_subscription(list(names)) as subscriber:

            async def pump() -> None:
                async for raw in subscriber.iter_events():
                    await queue.put(raw)

            # The subscription is read in its own task: waiting on the queue with a timeout is
            # safe to cancel, waiting on the subscriber's generator is not.
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
