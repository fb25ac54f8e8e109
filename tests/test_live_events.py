"""Live updates: the page's event stream hears about its own case only, while the session lasts."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from bff.app import create_app
from panel_core.clock import FakeClock
from panel_core.notifications.live import TASKS_CHANGED, publish_case_update
from tests import credit
from tests.conftest import Stack
from tests.helpers import open_case_via_channel, person, sign_in

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def _participant(stack: Stack) -> dict[str, Any]:
    body = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    return {"case_id": body["caseId"], "participant_id": body["participants"][0]["participantId"]}


def _publish_soon(stack: Stack, case_id: str, kind: str) -> threading.Thread:
    """Publish from another thread: the test client may hold this loop while it streams."""

    def publish() -> None:
        time.sleep(0.8)

        async def send() -> None:
            redis = Redis.from_url(stack.settings.redis_url)
            try:
                await publish_case_update(redis, uuid.uuid4(), kind)  # another case
                await publish_case_update(redis, case_id, kind)
            finally:
                await redis.aclose()

        asyncio.run(send())

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


async def test_the_stream_delivers_this_case_updates_and_nothing_personal(stack: Stack) -> None:
    who = await _participant(stack)
    # A short session, so the stream ends by itself and the test reads all of it.
    short = msgspec.structs.replace(stack.settings, session_idle_timeout_seconds=3)
    async with AsyncTestClient(create_app(short)) as client:
        await sign_in(client, who["participant_id"])
        publisher = _publish_soon(stack, who["case_id"], TASKS_CHANGED)
        async with client.stream("GET", "/events/") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = [line async for line in response.aiter_lines()]
        publisher.join()
    events = [line for line in lines if line.startswith("event:")]
    assert events == ["event: case-update", "event: session-ended"]
    assert 'data: {"kind": "tasks-changed"}' in lines


async def test_the_stream_needs_a_session_and_ends_with_it(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        assert (await client.get("/events/")).status_code == 401
    who = await _participant(stack)
    clock = FakeClock()
    async with AsyncTestClient(create_app(stack.settings, clock=clock)) as client:
        await sign_in(client, who["participant_id"])

        def expire() -> None:
            time.sleep(0.5)
            clock.advance(stack.settings.session_idle_timeout_seconds + 1)

        expiry = threading.Thread(target=expire)
        expiry.start()
        lines: list[str] = []
        async with client.stream("GET", "/events/") as response:
            async for line in response.aiter_lines():
                lines.append(line)
        expiry.join()
    assert "event: session-ended" in lines


async def test_background_refreshes_do_not_keep_the_session_alive(stack: Stack) -> None:
    who = await _participant(stack)
    clock = FakeClock()
    idle = stack.settings.session_idle_timeout_seconds
    async with AsyncTestClient(create_app(stack.settings, clock=clock)) as client:
        await sign_in(client, who["participant_id"])
        background = {"x-panel-background": "1"}
        clock.advance(idle - 10)
        assert (await client.get("/api/participant/tasks", headers=background)).status_code == 200
        clock.advance(20)
        assert (await client.get("/api/participant/tasks", headers=background)).status_code == 401
