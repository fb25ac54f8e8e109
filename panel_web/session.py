"""Server-side sessions in Redis, with a new id at login and timeouts enforced here.

An ended session stays ended. Logout (and every other end: a timeout, a lock, the id given
up at login) writes a revocation marker beside deleting the data, and the store refuses,
atomically, to write a session whose id is revoked: a request that was still running when
the person signed out cannot bring the session back by saving it on its way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from redis.asyncio import Redis

# KEYS: session key, revocation key. ARGV: data, seconds to live (0: none).
_SET_UNLESS_REVOKED = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""


class SessionStore(RedisStore):
    """Litestar's Redis store, with revocation: a revoked id is never written again."""

    def __init__(self, redis: Redis, namespace: str, revoked_for_seconds: int) -> None:
        super().__init__(redis, namespace=namespace)
        self._revoked_for = revoked_for_seconds
        self._set_unless_revoked = redis.register_script(_SET_UNLESS_REVOKED)

    def _revocation_key(self, key: str) -> str:
        return self._make_key(f"revoked:{key}")

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        await self.set_unless_revoked(key, value, expires_in)

    async def set_unless_revoked(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> bool:
        """Store the session unless its id is revoked; whether it was stored."""
        seconds = (
            int(expires_in.total_seconds()) if isinstance(expires_in, timedelta) else expires_in
        )
        stored = await self._set_unless_revoked(
            keys=[self._make_key(key), self._revocation_key(key)],
            args=[value, seconds or 0],
        )
        return bool(stored)

    async def get_unless_revoked(self, key: str) -> bytes | None:
        """The session's data, None if it is revoked or gone: one round trip, not two."""
        revoked, data = await self._redis.mget(self._revocation_key(key), self._make_key(key))
        if revoked is not None or data is None:
            return None
        return data if isinstance(data, bytes) else str(data).encode()

    async def revoke(self, key: str) -> None:
        """End the session for good: its data goes and its id can never be stored again."""
        async with self._redis.pipeline(transaction=True) as pipe:
            # Kept as long as a session could have lived, after which the id is dead anyway.
            pipe.set(self._revocation_key(key), b"1", ex=self._revoked_for)
            pipe.delete(self._make_key(key))
            await pipe.execute()


# Set by the login: the response stores the session under a fresh id and deletes the old one,
# so an id known before login (fixation) is worth nothing after it.
ROTATE = "_rotate"
_NEW_ID = "panel_rotated_session_id"


class RotatingSessionBackend(ServerSideSessionBackend):
    async def delete(self, session_id: str, store: Store) -> None:
        if isinstance(store, SessionStore):
            await store.revoke(session_id)
        else:
            await super().delete(session_id, store)

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        store = self.config.get_store_from_app(connection.scope["app"])
        if not isinstance(store, SessionStore):
            return await super().load_from_connection(connection)
        if not session_id:
            return {}
        data = await store.get_unless_revoked(session_id)
        return self.deserialize_data(data) if data is not None else {}

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated = connection.state.get(_NEW_ID)
        if rotated:
            return str(rotated)
        return super().get_session_id(connection)

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        if scope_session is None:
            # The session could not even be loaded (store unavailable): leave everything as is.
            return
        existing = connection.cookies.get(self.config.key)
        has_cookie = bool(existing) and existing != "null"
        if isinstance(scope_session, dict):
            rotate = scope_session.pop(ROTATE, False)
            if not scope_session:
                # Anonymous visitors get no session: nothing is stored and no cookie is set, so
                # a stream of page views cannot fill Redis.
                if has_cookie:
                    await super().store_in_message(Empty, message, connection)
                return
            store = self.config.get_store_from_app(connection.scope["app"])
            if rotate:
                if has_cookie:
                    await self.delete(str(existing), store=store)
                connection.state[_NEW_ID] = self.generate_session_id()
            elif has_cookie and isinstance(store, SessionStore):
                await self._store_unless_revoked(scope_session, message, connection, store)
                return
        await super().store_in_message(scope_session, message, connection)

    async def _store_unless_revoked(
        self,
        scope_session: dict[str, Any],
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
        store: SessionStore,
    ) -> None:
        """The session saved under its id, and its cookie sent, only if the id is still live.

        The session may have ended while this request ran (a logout, a parallel sign-in that
        rotated it): then nothing is stored, and the browser's newer cookie is left alone. The
        check and the write are one atomic step in Redis.
        """
        session_id = self.get_session_id(connection)
        data = self.serialize_data(scope_session, connection.scope)
        max_age = int(self.config.max_age) if self.config.max_age is not None else None
        if not await store.set_unless_revoked(session_id, data, expires_in=max_age):
            return
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )
        MutableScopeHeaders.from_message(message).add(
            "Set-Cookie",
            Cookie(value=session_id, key=self.config.key, **cookie_params).to_header(header=""),
        )


@dataclass
class PanelSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend
