"""The language of each request, and the language switch every page links to.

The choice is kept in a small cookie rather than the session: anonymous visitors choose a
language too, and the panel stores no session for them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, get
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from litestar.types import ASGIApp, Receive, Scope, Send

from panel_core.i18n import DEFAULT_LOCALE, set_locale, supported

LANGUAGE_COOKIE = "panel-lang"
ONE_YEAR = 365 * 24 * 3600


def request_locale(cookie_header: str) -> str:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == LANGUAGE_COOKIE:
            return supported(value) or DEFAULT_LOCALE
    return DEFAULT_LOCALE


class LocaleMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        cookies = b"; ".join(value for name, value in scope["headers"] if name == b"cookie")
        set_locale(request_locale(cookies.decode("latin-1")))
        await next_app(scope, receive, send)


def safe_return_path(next_path: str) -> str:
    """Only a path on this site: never an open redirect."""
    parts = urlsplit(next_path)
    if parts.scheme or parts.netloc or not next_path.startswith("/") or "\\" in next_path:
        return "/"
    return next_path


@get("/language/{code:str}", include_in_schema=False)
async def switch_language(
    request: Request[Any, Any, Any], code: FromPath[str], next: FromQuery[str] = "/"
) -> Redirect:
    locale = supported(code) or DEFAULT_LOCALE
    settings = request.app.state.settings
    return Redirect(
        path=safe_return_path(next),
        status_code=303,
        cookies=[language_cookie(locale, secure=settings.secure_cookies)],
    )


def language_cookie(locale: str, *, secure: bool) -> Cookie:
    """The cookie that makes every page speak ``locale`` (a supported one) from now on."""
    return Cookie(
        key=LANGUAGE_COOKIE,
        value=supported(locale) or DEFAULT_LOCALE,
        max_age=ONE_YEAR,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
