"""CSRF tokens that cannot be compared are refused like wrong ones."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from panel_web.multipart import CSRF_FAILED

_CSRF_MODULE = CSRFMiddleware.__module__


class CsrfTokenGuard(ASGIMiddleware):
    """A CSRF token beyond ASCII fails the check (403) instead of crashing it (500).

    Litestar's CSRF middleware compares str tokens with ``hmac.compare_digest``, which raises
    TypeError on such a token. Last in the app's middleware, this wraps that check directly;
    only a TypeError raised inside it is turned into the refusal.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        try:
            await next_app(scope, receive, send)
        except TypeError as error:
            frame = error.__traceback__
            while frame is not None and frame.tb_next is not None:
                frame = frame.tb_next
            if frame is None or frame.tb_frame.f_globals.get("__name__") != _CSRF_MODULE:
                raise
            raise PermissionDeniedException(CSRF_FAILED) from error
