"""Server-rendered pages of both web apps: templates, languages, times, error pages."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import MediaType, Request, Response, get
from litestar.exceptions import HTTPException, InternalServerException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from panel_core import i18n
from panel_core.branding import Branding
from panel_core.forms.view import any_required
from panel_core.resilience import is_transient

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
UNAVAILABLE = i18n.N_("The service is temporarily unavailable. Please try again in a few minutes.")
# Details of errors raised by Litestar itself or deep in the panel, shown on error pages.
ERROR_PAGE_TEXTS = (
    i18n.N_("Not found"),
    i18n.N_("CSRF token verification failed"),
    i18n.N_("Sign in to your case to continue."),
    i18n.N_("Your session has ended. Sign in again to continue."),
    i18n.N_("Request Entity Too Large"),
    i18n.N_("Method Not Allowed"),
    i18n.N_("Internal Server Error"),
)
DISPLAY_ZONE = ZoneInfo("Europe/Warsaw")


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


ERROR_TEMPLATE_KEY = "panel_error_template"


def _error_page(request: Request[Any, Any, Any], status_code: int, detail: str) -> Response[Any]:
    template = str(request.app.state.get(ERROR_TEMPLATE_KEY, "error.html.j2"))
    return Template(
        template, context={"status_code": status_code, "detail": detail}, status_code=status_code
    )


def html_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if not _wants_html(request):
        body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, media_type=MediaType.JSON)
    # Details are English msgids; pages show them in the person's language.
    return _error_page(request, exc.status_code, i18n.gettext(str(exc.detail)))


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Redis holds sessions and login counters: without it nothing is let through. An outage
    of the database is the same for the person: try again shortly; nothing is lost."""
    if not isinstance(exc, RedisError) and not is_transient(exc):
        log.error("request failed", exc_info=exc)
        return html_error(request, InternalServerException())
    detail = i18n.gettext(UNAVAILABLE)
    if not _wants_html(request):
        return Response({"status_code": 503, "detail": detail}, status_code=503)
    return _error_page(request, 503, detail)


def exception_handlers() -> ExceptionHandlersMap:
    """Error pages use the app state's ``ERROR_TEMPLATE_KEY`` template (each app its own)."""
    return {
        HTTPException: html_error,
        RedisError: unavailable,
        DBAPIError: unavailable,
        OSError: unavailable,
    }


def local_time(moment: datetime) -> str:
    """Times as a person in Poland reads them, whatever zone the database gave back."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(DISPLAY_ZONE).strftime("%d.%m.%Y %H:%M")


def install_i18n(engine: JinjaTemplateEngine, branding: Branding | None = None) -> None:
    environment = engine.engine
    environment.globals["branding"] = branding or Branding()
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.translate, ngettext=i18n.translate_plural, newstyle=True
    )
    environment.globals["current_locale"] = i18n.current_locale
    environment.globals["language_names"] = i18n.LANGUAGE_NAMES
    environment.globals["pick"] = i18n.pick
    environment.globals["any_required"] = any_required
    environment.filters["local_time"] = local_time


def template_config(branding: Branding | None = None) -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES_DIR,
        engine=JinjaTemplateEngine,
        engine_callback=lambda engine: install_i18n(engine, branding),
    )


def branding_routes(branding: Branding) -> list[Any]:
    """The bank's own files under /branding/, where it has any."""
    if not branding.folder:
        return []
    return [
        create_static_files_router(
            path="/branding", directories=[Path(branding.folder)], include_in_schema=False
        )
    ]
