"""Rate limits on the login: per IP address and per case number, the same for every answer."""

from __future__ import annotations

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from bff.app import create_app
from tests.conftest import Stack
from tests.helpers import csrf_token

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


async def _post(client: AsyncTestClient[object], case: str, fragment: str) -> int:
    response = await client.post(
        "/login",
        data={"case": case, "fragment": fragment, "_csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    return response.status_code


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
