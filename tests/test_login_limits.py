"""Rate limits on the login: per address, and per case number from one address; the same for
every answer."""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis

from bff.app import create_app
from tests import credit
from tests.conftest import Stack
from tests.helpers import csrf_token, open_case_via_channel, person
from tests.sms_inbox import code_in, messages_to, next_message

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(autouse=True)
async def fresh_counters(stack: Stack) -> None:
    # Other tests share this Redis and the test client's address; start from zero.
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter("panel:login:rate:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def _send(client: AsyncTestClient[Any], case: str, fragment: str) -> httpx.Response:
    return await client.post(
        "/login",
        data={"case": case, "fragment": fragment, "_csrf_token": csrf_token(client)},
        follow_redirects=False,
    )


async def _post(client: AsyncTestClient[Any], case: str, fragment: str) -> int:
    return (await _send(client, case, fragment)).status_code


def from_address(app: Litestar, host: str) -> Litestar:
    """The app as reached by a client at ``host`` (the test client is always "testclient")."""
    inner = app.asgi_handler

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        scope["client"] = (host, 40000)
        await inner(scope, receive, send)

    app.asgi_handler = handler
    return app


def _page(response: httpx.Response, fragment: str) -> tuple[int, str]:
    # The CSRF token is random per browser and the form shows back what was typed; all the
    # rest must match to the byte.
    text = re.sub(r'name="_csrf_token" value="[^"]*"', "", response.text)
    return response.status_code, text.replace(f'value="{fragment}"', 'value=""')


async def test_one_address_gets_a_limited_number_of_login_requests(stack: Stack) -> None:
    settings = msgspec.structs.replace(stack.settings, login_ip_limit=3)
    async with AsyncTestClient(create_app(settings)) as client:
        await client.get("/login")
        # Different (unknown) case numbers: the per-IP limit applies across cases.
        codes = [await _post(client, f"KR-2026-1111111{i}", "1234") for i in range(5)]
    assert codes == [303, 303, 303, 429, 429]


async def test_one_case_number_gets_a_limited_number_of_login_requests(stack: Stack) -> None:
    settings = msgspec.structs.replace(stack.settings, login_case_limit=2)
    async with AsyncTestClient(create_app(settings)) as client:
        await client.get("/login")
        case = "KR-2026-22222222"
        codes = [await _post(client, case, f"{i:04d}") for i in range(4)]
        other = await _post(client, "KR-2026-33333333", "0000")
    assert codes == [303, 303, 429, 429]
    assert other == 303


async def test_a_strangers_wrong_fragments_do_not_keep_the_participant_out(stack: Stack) -> None:
    who = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case_via_channel(stack.settings, [who])
    redis_url = stack.settings.redis_url
    await next_message(redis_url, who["phone"], 0, within=60)  # the invitation
    number, fragment = case["caseNumber"], who["pesel"][-4:]
    wrong = [f"{(int(fragment) + i) % 10000:04d}" for i in range(1, 6)]
    settings = msgspec.structs.replace(stack.settings, login_case_limit=3)
    async with AsyncTestClient(from_address(create_app(settings), "198.51.100.7")) as stranger:
        await stranger.get("/login")
        assert [await _post(stranger, number, f) for f in wrong] == [303, 303, 303, 429, 429]
        # Over the limit, the right fragment gets exactly the answer a wrong one gets.
        right_answer = _page(await _send(stranger, number, fragment), fragment)
        wrong_answer = _page(await _send(stranger, number, wrong[0]), wrong[0])
        assert right_answer == wrong_answer and right_answer[0] == 429
    async with AsyncTestClient(from_address(create_app(settings), "203.0.113.9")) as owner:
        await owner.get("/login")
        seen = len(await messages_to(redis_url, who["phone"]))
        assert await _post(owner, number, fragment) == 303
        assert code_in(await next_message(redis_url, who["phone"], seen))


async def test_the_addresses_of_one_ipv6_network_count_as_one_client(stack: Stack) -> None:
    settings = msgspec.structs.replace(stack.settings, login_ip_limit=2)
    codes = []
    for host in (
        "2001:db8:1:2::10",
        "2001:db8:1:2:ffff::1",
        "2001:db8:1:2::abcd",
        "2001:db8:1:3::10",
    ):
        async with AsyncTestClient(from_address(create_app(settings), host)) as client:
            await client.get("/login")
            codes.append(await _post(client, "KR-2026-44444444", "1234"))
    # One /64 is one subscriber's network; the next /64 is someone else.
    assert codes == [303, 303, 429, 303]
