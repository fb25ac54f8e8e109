"""The BFF's request class: a JSON body nested too deeply is the sender's error, not ours."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class PanelRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            # msgspec decodes recursively; a body nested a thousand levels deep exhausts the
            # stack. No form or channel request comes near that.
            raise ClientException("The JSON document is nested too deeply.") from exc
