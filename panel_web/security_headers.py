"""Security headers on every response: pages, API, static files and the framework's own
answers (404 for an unknown path, 405, the CSRF refusal), which no route middleware sees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope


# No inline scripts or styles anywhere: everything comes from /static.
def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """The policy; ``form_targets`` are other origins a form may lead to.

    Browsers apply ``form-action`` to every redirect after a form is sent, so a form whose
    answer redirects elsewhere (signing out at the identity provider) needs that origin here.
    """
    form_action = " ".join(["'self'", *form_targets])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self'; form-action {form_action}; base-uri 'none'; "
        "object-src 'none'; frame-ancestors 'none'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()

SecurityHeadersHook = Callable[[Message, Scope], Awaitable[None]]


def security_headers(form_targets: Iterable[str] = ()) -> SecurityHeadersHook:
    """A Litestar ``before_send`` hook: it wraps the whole app, so every answer gets these."""
    policy = content_security_policy(form_targets)

    async def add(message: Message, scope: Scope) -> None:
        _add(message, scope, policy)

    return add


async def add_security_headers(message: Message, scope: Scope) -> None:
    """The hook with the strictest policy: every form stays on this site."""
    _add(message, scope, CONTENT_SECURITY_POLICY)


def _add(message: Message, scope: Scope, policy: str) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["Content-Security-Policy"] = policy
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if "cache-control" not in headers:
        # Pages show personal data: no shared or back-button caches.
        headers["Cache-Control"] = "no-store"
    if scope.get("scheme") == "https":
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
