"""The web apps' request class, and who sent a request, for the audit log."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

from panel_core.identity.actors import Client


class PanelRequest(Request[Any, Any, Any]):
    """A JSON body nested too deeply is the sender's error, not ours."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            # msgspec decodes recursively; a body nested a thousand levels deep exhausts the
            # stack. No form or channel request comes near that.
            raise ClientException("The JSON document is nested too deeply.") from exc


def client_of(request: Request[Any, Any, Any]) -> Client:
    """The sender as the audit log records it (the address is the proxy-checked one)."""
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
