"""The Redis client of a process: a bounded pool that waits for a free connection.

redis-py's default pool refuses a command with "Too many connections" once its connections
are in use, so a burst of requests (hundreds of pages opening their event streams at once)
failed with 503s. This pool makes the request wait, for at most ``pool_timeout`` seconds, and
keeps the number of connections a process holds to the bound operations size Redis for.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from panel_core.settings import Settings


def connect(settings: Settings) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
    )
    return Redis(connection_pool=pool)
