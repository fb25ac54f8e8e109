"""Litestar application factory of the backend-for-frontend."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    PermissionDeniedException,
)
from litestar.middleware import ASGIMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from bff.api_docs import SwaggerUnderCsp
from bff.controllers.case_overview import CaseOverviewController
from bff.controllers.channel_api import ChannelApiController
from bff.controllers.dev_outbox import DevOutboxController
from bff.controllers.dev_session import DevSessionController
from bff.controllers.documents import (
    DocumentReviewController,
    DocumentsController,
    ParticipantDocumentsApiController,
    ParticipantSignaturesApiController,
)
from bff.controllers.live_events import LiveEventsController
from bff.controllers.login import LoginController, logout
from bff.controllers.participant_api import ParticipantApiController
from bff.controllers.participant_pages import ParticipantPagesController
from bff.controllers.signing import SigningApiController, SigningPagesController
from bff.dependencies import provide_db
from bff.locale import LocaleMiddleware, switch_language
from bff.multipart import CSRF_FAILED
from bff.observability import (
    MetricsController,
    RequestIdMiddleware,
    prometheus_config,
    ready,
    structlog_plugin,
)
from bff.proxy import TrustedProxyMiddleware, parse_networks
from bff.request import PanelRequest
from bff.security_headers import add_security_headers
from bff.session import PanelSessionConfig, SessionStore
from panel_core import i18n
from panel_core.auth.service import LoginService
from panel_core.clock import Clock, SystemClock
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.scanning import build_scanner
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.rest import CamundaRestClient
from panel_core.outboxes import engine_outboxes
from panel_core.resilience import is_transient
from panel_core.settings import Settings, SettingsError, check_settings, get_settings

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
DEMO_CHANNEL_TOKEN = "demo-channel-token"  # noqa: S105 - only ever used in demo mode
# Bodies of every route but the uploads: forms of a few fields, the channels' JSON.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _html_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    wants_html = not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )
    if not wants_html:
        body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, media_type=MediaType.JSON)
    return Template(
        "error.html.j2",
        # Details are English msgids; pages show them in the person's language.
        context={"status_code": exc.status_code, "detail": i18n.gettext(str(exc.detail))},
        status_code=exc.status_code,
    )


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Redis holds sessions and login counters: without it nothing is let through. An outage
    of the database is the same for the person: try again shortly; nothing is lost."""
    if not isinstance(exc, RedisError) and not is_transient(exc):
        log.error("request failed", exc_info=exc)
        return _html_error(request, InternalServerException())
    detail = i18n.gettext(UNAVAILABLE)
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return Response({"status_code": 503, "detail": detail}, status_code=503)
    return Template(
        "error.html.j2", context={"status_code": 503, "detail": detail}, status_code=503
    )


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


DISPLAY_ZONE = ZoneInfo("Europe/Warsaw")


def _local_time(moment: datetime) -> str:
    """Times as a person in Poland reads them, whatever zone the database gave back."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(DISPLAY_ZONE).strftime("%d.%m.%Y %H:%M")


def install_i18n(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.translate, ngettext=i18n.translate_plural, newstyle=True
    )
    environment.globals["current_locale"] = i18n.current_locale
    environment.globals["language_names"] = i18n.LANGUAGE_NAMES
    environment.globals["pick"] = i18n.pick
    environment.filters["local_time"] = _local_time


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    settings = check_settings(settings or get_settings())
    clock = clock or SystemClock()
    redis = Redis.from_url(settings.redis_url)
    db = create_engine(settings.database_url)
    sessions = create_session_factory(db)
    engine_client = CamundaRestClient(
        settings.camunda_rest_url, settings.camunda_request_timeout_seconds
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await engine_client.aclose()
            await redis.aclose()
            await db.dispose()

    secret = settings.session_secret or secrets.token_urlsafe(32)
    cookie_prefix = "__Host-" if settings.secure_cookies else ""
    session_config = PanelSessionConfig(
        key=f"{cookie_prefix}panel-session",
        # The store forgets a session at the absolute timeout; the idle timeout is enforced
        # per request (bff/dependencies.py).
        max_age=settings.session_absolute_timeout_seconds,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
        path="/",
        store="sessions",
    )
    csrf_config = CSRFConfig(
        secret=secret,
        cookie_name=f"{cookie_prefix}csrftoken",
        cookie_secure=settings.secure_cookies,
        cookie_samesite="strict",
        # The channels' API authenticates with a bearer token and carries no cookies.
        exclude=["/api/channel"],
    )
    # Only the task page and the upload API take files; they alone accept large bodies.
    uploads = Router(
        path="/",
        route_handlers=[ParticipantPagesController, ParticipantDocumentsApiController],
        # Checked against Content-Length before the body is read, and counted while it
        # streams; a task page sends at most a few files and its answers.
        request_max_body_size=settings.document_max_bytes * settings.document_max_files_per_request
        + DEFAULT_MAX_BODY_BYTES,
    )
    controllers: list[Any] = [
        health,
        ready,
        MetricsController,
        switch_language,
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False
        ),
        LoginController,
        logout,
        LiveEventsController,
        ParticipantApiController,
        uploads,
        CaseOverviewController,
        DocumentsController,
        DocumentReviewController,
        ParticipantSignaturesApiController,
        SigningPagesController,
        SigningApiController,
        ChannelApiController,
    ]
    if settings.demo_mode:
        controllers.extend([DevSessionController, DevOutboxController])

    try:
        trusted_proxies = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"PANEL_TRUSTED_PROXIES: {exc}") from exc
    outboxes = engine_outboxes(settings, sessions, engine_client, redis)
    state = State(
        {
            "settings": settings,
            "clock": clock,
            "redis": redis,
            "login": LoginService(settings, sessions, redis, clock),
            "sessions": sessions,
            "engine": engine_client,
            "completions": outboxes.completions,
            "engine_commands": outboxes.commands,
            "document_storage": LocalDiskStorage(settings.document_storage_dir),
            "document_scanner": build_scanner(settings),
            "channel_api_token": settings.channel_api_token
            or (DEMO_CHANNEL_TOKEN if settings.demo_mode else ""),
        }
    )
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True
    )
    metrics = prometheus_config()
    return Litestar(
        route_handlers=controllers,
        plugins=[channels, structlog_plugin()],
        dependencies={"db": Provide(provide_db)},
        state=state,
        stores={
            "sessions": SessionStore(
                redis,
                namespace="panel-sessions",
                revoked_for_seconds=settings.session_absolute_timeout_seconds,
            )
        },
        middleware=[
            TrustedProxyMiddleware(trusted_proxies),
            RequestIdMiddleware(),
            metrics.middleware,
            LocaleMiddleware(),
            session_config.middleware,
            CsrfTokenGuard(),
        ],
        # Wraps the whole app, so the framework's own answers (404, 405) get them too.
        before_send=[add_security_headers],
        csrf_config=csrf_config,
        template_config=TemplateConfig(
            directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=install_i18n
        ),
        exception_handlers={
            HTTPException: _html_error,
            RedisError: _unavailable,
            DBAPIError: _unavailable,
            OSError: _unavailable,
        },
        openapi_config=OpenAPIConfig(
            title="Customer Panel API",
            version="0.1.0",
            render_plugins=[SwaggerUnderCsp()],
        ),
        lifespan=[lifespan],
        request_max_body_size=DEFAULT_MAX_BODY_BYTES,
        request_class=PanelRequest,
    )


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory bff.app:app_factory``."""
    return create_app()
