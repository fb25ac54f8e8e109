"""Litestar application factory of the backend-for-frontend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar, MediaType, Request, Response, get
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bff.controllers.case_overview import CaseOverviewController
from bff.controllers.channel_api import ChannelApiController
from bff.controllers.dev_outbox import DevOutboxController
from bff.controllers.dev_session import DevSessionController
from bff.controllers.documents import (
    DocumentReviewController,
    DocumentsController,
    ParticipantDocumentsApiController,
)
from bff.controllers.live_events import LiveEventsController
from bff.controllers.login import LoginController, logout
from bff.controllers.participant_api import ParticipantApiController
from bff.controllers.participant_pages import ParticipantPagesController
from bff.controllers.signing import SigningApiController, SigningPagesController
from bff.dependencies import provide_db
from bff.locale import LocaleMiddleware, switch_language
from bff.security_headers import SecurityHeadersMiddleware
from bff.session import PanelSessionConfig
from panel_core import i18n
from panel_core.auth.service import LoginService
from panel_core.clock import Clock, SystemClock
from panel_core.completions import CompletionDelivery
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.scanning import EicarScanner
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.rest import CamundaRestClient
from panel_core.settings import Settings, check_settings, get_settings

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


def _unavailable(request: Request[Any, Any, Any], exc: RedisError) -> Response[Any]:
    """Redis holds sessions and login counters: without it nothing is let through."""
    detail = i18n.gettext(UNAVAILABLE)
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return Response({"status_code": 503, "detail": detail}, status_code=503)
    return Template(
        "error.html.j2", context={"status_code": 503, "detail": detail}, status_code=503
    )


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
    controllers: list[Any] = [
        health,
        switch_language,
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False
        ),
        LoginController,
        logout,
        LiveEventsController,
        ParticipantApiController,
        ParticipantPagesController,
        CaseOverviewController,
        DocumentsController,
        DocumentReviewController,
        ParticipantDocumentsApiController,
        SigningPagesController,
        SigningApiController,
        ChannelApiController,
    ]
    if settings.demo_mode:
        controllers.extend([DevSessionController, DevOutboxController])

    state = State(
        {
            "settings": settings,
            "clock": clock,
            "redis": redis,
            "login": LoginService(settings, sessions, redis, clock),
            "sessions": sessions,
            "engine": engine_client,
            "delivery": CompletionDelivery(
                sessions,
                engine_client,
                retry_initial_seconds=settings.completion_retry_initial_seconds,
                retry_max_seconds=settings.completion_retry_max_seconds,
            ),
            "document_storage": LocalDiskStorage(settings.document_storage_dir),
            "document_scanner": EicarScanner(),
            "channel_api_token": settings.channel_api_token
            or (DEMO_CHANNEL_TOKEN if settings.demo_mode else ""),
        }
    )
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True
    )
    return Litestar(
        route_handlers=controllers,
        plugins=[channels],
        dependencies={"db": Provide(provide_db)},
        state=state,
        stores={"sessions": RedisStore(redis, namespace="panel-sessions")},
        middleware=[SecurityHeadersMiddleware(), LocaleMiddleware(), session_config.middleware],
        csrf_config=csrf_config,
        template_config=TemplateConfig(
            directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=install_i18n
        ),
        exception_handlers={HTTPException: _html_error, RedisError: _unavailable},
        openapi_config=OpenAPIConfig(title="Customer Panel API", version="0.1.0"),
        lifespan=[lifespan],
        # Checked against Content-Length before the body is read, and counted while it
        # streams; a task page sends at most a few files and its answers.
        request_max_body_size=settings.document_max_bytes * settings.document_max_files_per_request
        + 1024 * 1024,
    )


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory bff.app:app_factory``."""
    return create_app()
