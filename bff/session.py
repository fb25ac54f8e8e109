"""Server-side sessions in Redis, with a new id at login and timeouts enforced here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, ScopeSession

# Set by the login: the response stores the session under a fresh id and deletes the old one,
# so an id known before login (fixation) is worth nothing after it.
ROTATE = "_rotate"
_NEW_ID = "panel_rotated_session_id"


class RotatingSessionBackend(ServerSideSessionBackend):
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
            if rotate:
                if has_cookie:
                    await self.delete(
                        str(existing), store=self.config.get_store_from_app(connection.scope["app"])
                    )
                connection.state[_NEW_ID] = self.generate_session_id()
        await super().store_in_message(scope_session, message, connection)


@dataclass
class PanelSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend
