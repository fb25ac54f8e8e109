"""Litestar application factory of the backend-for-frontend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router

from bff.controllers.appointments import ParticipantAppointmentsController
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
from bff.controllers.messages import MessagesController
from bff.controllers.messages_api import ParticipantConversationsApiController
from bff.controllers.participant_api import ParticipantApiController
from bff.controllers.participant_pages import ParticipantPagesController
from bff.controllers.signing import SigningApiController, SigningPagesController
from bff.dependencies import GuardSessionCleanup, provide_db
from panel_core import redis_pool
from panel_core.branding import load_branding
from panel_core.clock import Clock, SystemClock
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.scanning import build_scanner
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.rest import CamundaRestClient
from panel_core.identity.service import LoginService
from panel_core.outboxes import engine_outboxes
from panel_core.settings import Settings, SettingsError, check_settings, get_settings
from panel_web.api_docs import SwaggerUnderCsp
from panel_web.csrf import CsrfTokenGuard
from panel_web.locale import LocaleMiddleware, switch_language
from panel_web.observability import (
    MetricsController,
    RequestIdMiddleware,
    prometheus_config,
    ready,
    structlog_plugin,
)
from panel_web.pages import STATIC_DIR, branding_routes, exception_handlers, health, template_config
from panel_web.proxy import TrustedProxyMiddleware, parse_networks
from panel_web.request import PanelRequest
from panel_web.security_headers import add_security_headers
from panel_web.session import PanelSessionConfig, SessionStore

DEMO_CHANNEL_TOKEN = "demo-channel-token"  # noqa: S105 - only ever used in demo mode
# Bodies of every route but the uploads: forms of a few fields, the channels' JSON.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    settings = check_settings(settings or get_settings())
    clock = clock or SystemClock()
    redis = redis_pool.connect(settings)
    db = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
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
        ParticipantAppointmentsController,
        MessagesController,
        ParticipantConversationsApiController,
        DocumentsController,
        DocumentReviewController,
        ParticipantSignaturesApiController,
        SigningPagesController,
        SigningApiController,
        ChannelApiController,
    ]
    if settings.demo_mode:
        controllers.extend([DevSessionController, DevOutboxController])
    branding = load_branding(settings.branding_file)
    controllers.extend(branding_routes(branding))

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
            GuardSessionCleanup(),
            session_config.middleware,
            CsrfTokenGuard(),
        ],
        # Wraps the whole app, so the framework's own answers (404, 405) get them too.
        before_send=[add_security_headers],
        csrf_config=csrf_config,
        template_config=template_config(branding),
        exception_handlers=exception_handlers(),
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
