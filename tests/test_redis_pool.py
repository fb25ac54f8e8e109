"""A burst of Redis commands larger than a process's pool waits for connections instead of
failing: hundreds of pages opening their event streams at once got 503s before."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from panel_core import redis_pool
from tests.conftest import Stack

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def _burst(redis: Redis, size: int) -> list[object]:
    # BLPOP holds its connection for the whole wait, as a slow command would.
    return await asyncio.gather(
        *(redis.blpop([f"panel-test:pool:{n}"], timeout=0.2) for n in range(size)),
        return_exceptions=True,
    )


async def test_a_burst_larger_than_the_pool_waits_for_connections(stack: Stack) -> None:
    small = msgspec.structs.replace(stack.settings, redis_max_connections=4)
    redis = redis_pool.connect(small)
    try:
        results = await _burst(redis, 40)
    finally:
        await redis.aclose()
    assert results == [None] * 40


async def test_the_library_default_pool_refuses_the_same_burst(stack: Stack) -> None:
    """What the bounded pool replaces: the same burst on redis-py's own pool of that size."""
    redis = Redis(
        connection_pool=ConnectionPool.from_url(stack.settings.redis_url, max_connections=4)
    )
    try:
        results = await _burst(redis, 40)
    finally:
        await redis.aclose()
    assert any(isinstance(r, RedisConnectionError) for r in results)
