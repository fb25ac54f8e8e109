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
from panel_core.db.models import Case
from tests import credit
from tests.conftest import Stack
from tests.helpers import PDF_BYTES, open_case_via_channel, person, sign_in

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
                "caseType": credit.CASE_TYPE_CREDIT,
                "participants": [person(credit.ROLE_PRIMARY_BORROWER, 0)],
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


PRIMARY = person(credit.ROLE_PRIMARY_BORROWER, 0)
CO = person(credit.ROLE_CO_BORROWER, 1)
TWIN = {**person(credit.ROLE_CO_BORROWER, 2), "pesel": PRIMARY["pesel"]}


def _case(*people: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"caseType": credit.CASE_TYPE_CREDIT, "participants": list(people), **extra}


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({}, _case(PRIMARY), 401, "channel token"),
        ({"authorization": "Bearer wrong"}, _case(PRIMARY), 401, "channel token"),
        (None, {**_case(PRIMARY), "caseType": "mortgage"}, 400, "Unknown case type"),
        (None, _case(CO), 400, "exactly 1 primary-borrower, not 0"),
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


# hmac.compare_digest refuses str with characters beyond ASCII (TypeError): a token like this
# must be a refusal, never a server error.
NON_ASCII = "żółć" * 16


async def test_a_non_ascii_channel_token_is_refused(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        for token in (NON_ASCII, DEMO_CHANNEL_TOKEN[:-1] + "ż"):
            response = await client.post(
                "/api/channel/cases",
                json=_case(PRIMARY),
                headers={"authorization": f"Bearer {token}".encode()},
            )
            assert response.status_code == 401, response.text


def _forged(token: str) -> str:
    # The token's own secret, and a signature part that is not ASCII.
    return token[:64] + NON_ASCII


async def test_a_non_ascii_csrf_token_is_refused_on_ordinary_routes(stack: Stack) -> None:
    # A case number of its own: the codes sent per (unknown) identity are limited, and other
    # tests try the well-known unknown number too.
    form = {"case": f"KR-2026-{uuid.uuid4().int % 10**8:08d}", "fragment": "1234"}
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await client.get("/login")
        token = client.cookies.get("csrftoken", "")
        by_header = await client.post(
            "/login", data=form, headers={"x-csrftoken": _forged(token).encode()}
        )
        assert by_header.status_code == 403, by_header.text
        by_field = await client.post("/login", data={**form, "_csrf_token": _forged(token)})
        assert by_field.status_code == 403, by_field.text
        # The middleware's answer is still the ordinary one for the right token.
        fine = await client.post(
            "/login", data={**form, "_csrf_token": token}, follow_redirects=False
        )
        assert fine.status_code == 303
    async with AsyncTestClient(create_app(stack.settings)) as client:
        by_cookie = await client.post(
            "/login",
            data={**form, "_csrf_token": token},
            headers={"cookie": f"csrftoken={_forged(token)}".encode()},
        )
        assert by_cookie.status_code == 403, by_cookie.text


async def test_a_non_ascii_csrf_token_is_refused_on_streamed_uploads(stack: Stack) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        token = client.cookies.get("csrftoken", "")
        url = f"/api/participant/tasks/{uuid.uuid4()}/documents"
        files = {"incomeProof": ("income.pdf", PDF_BYTES, "application/pdf")}
        by_header = await client.post(
            url, files=files, headers={"x-csrftoken": _forged(token).encode()}
        )
        assert by_header.status_code == 403, by_header.text
        by_field = await client.post(url, data={"_csrf_token": _forged(token)}, files=files)
        assert by_field.status_code == 403, by_field.text
        by_secret = await client.post(
            url, data={"_csrf_token": NON_ASCII + token[64:]}, files=files
        )
        assert by_secret.status_code == 403, by_secret.text
