"""What the BFF refuses: no session, no CSRF token, no channel token, bad requests."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core import constants as c
from panel_core.db.models import Case
from tests.conftest import Stack
from tests.helpers import person, sign_in

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def test_participant_routes_need_a_session(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        listed = await client.get("/api/participant/tasks")
        assert listed.status_code == 401
        detail = await client.get(f"/api/participant/tasks/{uuid.uuid4()}")
        assert detail.status_code == 401
        page = await client.get("/tasks/", headers={"accept": "text/html"})
        assert page.status_code == 401
        assert "nie jesteś zalogowany" in page.text  # Polish by default
        assert 'href="/login"' in page.text
        await client.get("/health")  # any GET sets the CSRF cookie
        completion = await client.post(
            f"/api/participant/tasks/{uuid.uuid4()}/completion",
            json={"variables": {}},
            headers={"x-csrftoken": client.cookies.get("csrftoken", "")},
        )
        assert completion.status_code == 401


async def test_state_changing_requests_need_the_csrf_token(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await client.get("/dev/sign-in")
        refused = await client.post("/dev/sign-in", data={"participant": str(uuid.uuid4())})
        assert refused.status_code == 403
        completion = await client.post(
            f"/api/participant/tasks/{uuid.uuid4()}/completion", json={"variables": {}}
        )
        assert completion.status_code == 403


async def test_session_cookie_is_host_only_secure_httponly_and_strict(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    secure = msgspec.structs.replace(stack.settings, secure_cookies=True)
    async with AsyncTestClient(create_app(stack.settings)) as channel:
        response = await channel.post(
            "/api/channel/cases",
            json={
                "caseType": c.CASE_TYPE_CREDIT,
                "participants": [person(c.ROLE_PRIMARY_BORROWER, 0)],
            },
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
        participant = response.json()["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(secure), base_url="https://testserver.local") as client:
        await sign_in(client, participant)
        assert (await client.get("/api/participant/tasks")).status_code == 200
        jar = {cookie.name: cookie for cookie in client.cookies.jar}
        session_cookie = jar.get("__Host-panel-session")
        assert session_cookie is not None, list(jar)
        assert session_cookie.secure
        assert session_cookie.path == "/"
        assert session_cookie.has_nonstandard_attr("HttpOnly")
        assert str(session_cookie.get_nonstandard_attr("SameSite")).lower() == "strict"
        assert session_cookie.domain_specified is False


async def test_the_demo_sign_in_does_not_exist_outside_demo_mode(stack: Stack) -> None:
    production = msgspec.structs.replace(stack.settings, demo_mode=False)
    async with AsyncTestClient(create_app(production)) as client:
        assert (await client.get("/dev/sign-in")).status_code == 404


PRIMARY = person(c.ROLE_PRIMARY_BORROWER, 0)
CO = person(c.ROLE_CO_BORROWER, 1)
TWIN = {**person(c.ROLE_CO_BORROWER, 2), "pesel": PRIMARY["pesel"]}


def _case(*people: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"caseType": c.CASE_TYPE_CREDIT, "participants": list(people), **extra}


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({}, _case(PRIMARY), 401, "channel token"),
        ({"authorization": "Bearer wrong"}, _case(PRIMARY), 401, "channel token"),
        (None, {**_case(PRIMARY), "caseType": "mortgage"}, 400, "Unknown case type"),
        (None, _case(CO), 400, "exactly one primary borrower"),
        (None, _case(), 400, "at least one participant"),
        (None, _case({**PRIMARY, "pesel": "44051401358"}), 400, "Participant 1: The PESEL"),
        (None, _case(PRIMARY, {**CO, "phone": "12"}), 400, "Participant 2"),
        (None, _case(PRIMARY, {**CO, "locale": "de"}), 400, "language"),
        (None, _case(PRIMARY, TWIN), 400, "same digits"),
        (None, _case(PRIMARY, nickname="x"), 400, ""),
        (None, _case({**PRIMARY, "name": "Jan Kowalski"}), 400, ""),
    ],
)
async def test_the_channel_api_refuses_bad_requests_and_opens_nothing(
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    headers: dict[str, str] | None,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    async with sessions() as session:
        before = await session.scalar(select(func.count()).select_from(Case))
    async with AsyncTestClient(create_app(stack.settings)) as client:
        response = await client.post(
            "/api/channel/cases",
            json=body,
            headers=headers
            if headers is not None
            else {"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == status, response.text
    assert message in response.text
    async with sessions() as session:
        after = await session.scalar(select(func.count()).select_from(Case))
    assert after == before


async def test_anonymous_page_views_store_no_session(stack: Stack) -> None:
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        before = len([k async for k in redis.scan_iter("panel-sessions*")])
        async with AsyncTestClient(create_app(stack.settings)) as client:
            for _ in range(20):
                response = await client.get("/login")
                assert "panel-session" not in response.headers.get("set-cookie", "")
        after = len([k async for k in redis.scan_iter("panel-sessions*")])
    finally:
        await redis.aclose()
    assert after == before
