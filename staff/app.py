"""Litestar application factory of the staff dashboard.

Its own application, on its own port (in production its own internal host), with its own
session cookie, session policy and CSRF cookie; it shares the domain core and the web package
with the participants' panel, never the panel itself.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar, Request, Response
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from panel_core import redis_pool
from panel_core.branding import load_branding
from panel_core.clock import Clock, SystemClock
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.rest import CamundaRestClient
from panel_core.outboxes import engine_outboxes
from panel_core.settings import Settings, SettingsError, check_settings, get_settings
from panel_web.csrf import CsrfTokenGuard
from panel_web.locale import LocaleMiddleware, switch_language
from panel_web.observability import (
    MetricsController,
    RequestIdMiddleware,
    prometheus_config,
    ready,
    structlog_plugin,
)
from panel_web.pages import (
    ERROR_TEMPLATE_KEY,
    STATIC_DIR,
    branding_routes,
    exception_handlers,
    health,
    html_error,
    template_config,
)
from panel_web.proxy import TrustedProxyMiddleware, parse_networks
from panel_web.request import PanelRequest
from panel_web.security_headers import security_headers
from panel_web.session import PanelSessionConfig, SessionStore
from staff.controllers.appointments import AppointmentsController, CalendarController
from staff.controllers.assisted import AssistedController
from staff.controllers.auth import AuthController
from staff.controllers.canned_answers import CannedAnswersController
from staff.controllers.cases import CasesController
from staff.controllers.contact import ContactController
from staff.controllers.conversations import (
    ConversationsController,
    conversation_badges,
    count_conversations,
)
from staff.controllers.customers import CustomersController
from staff.controllers.events import StaffEventsController
from staff.controllers.export import CaseExportController
from staff.controllers.inbox import InboxController
from staff.controllers.incidents import IncidentsController, template_globals
from staff.controllers.tasks import StaffTasksApiController, StaffTasksController
from staff.dependencies import StaffServices, provide_db, services_provider
from staff.oidc import OidcClient

# Staff post forms of a few fields; no route of the dashboard takes files.
MAX_BODY_BYTES = 256 * 1024


def _sign_in_first(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    """A page asked for without a session leads to the sign-in, and back afterwards."""
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return Redirect(f"/login?next={request.url.path}", status_code=303)
    return html_error(request, exc)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    settings = check_settings(settings or get_settings())
    if not settings.staff_oidc_client_secret:
        raise SettingsError("Set PANEL_STAFF_OIDC_CLIENT_SECRET: the dashboard's OIDC client.")
    clock = clock or SystemClock()
    redis = redis_pool.connect(settings)
    db = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    sessions = create_session_factory(db)
    engine = CamundaRestClient(settings.camunda_rest_url, settings.camunda_request_timeout_seconds)
    base_url = settings.staff_public_base_url.rstrip("/")
    oidc = OidcClient(
        issuer=settings.staff_oidc_issuer,
        client_id=settings.staff_oidc_client_id,
        client_secret=settings.staff_oidc_client_secret,
        redirect_uri=f"{base_url}/auth/callback",
        staff_role=settings.staff_role,
        manager_role=settings.staff_manager_role,
        clock=clock,
    )
    outboxes = engine_outboxes(settings, sessions, engine, redis)
    services = StaffServices(
        settings=settings,
        clock=clock,
        sessions=sessions,
        redis=redis,
        engine=engine,
        completions=outboxes.completions,
        commands=outboxes.commands,
        oidc=oidc,
        storage=LocalDiskStorage(settings.document_storage_dir),
    )
    try:
        trusted_proxies = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"PANEL_TRUSTED_PROXIES: {exc}") from exc

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await oidc.aclose()
            await engine.aclose()
            await redis.aclose()
            await db.dispose()

    secret = settings.staff_session_secret or secrets.token_urlsafe(32)
    prefix = "__Host-" if settings.secure_cookies else ""
    session_config = PanelSessionConfig(
        key=f"{prefix}staff-session",
        max_age=settings.staff_session_absolute_timeout_seconds,
        secure=settings.secure_cookies,
        httponly=True,
        # Lax, not Strict: the identity provider's redirect back to /auth/callback is a
        # cross-site navigation that must carry the pending sign-in.
        samesite="lax",
        path="/",
        store="staff-sessions",
    )
    csrf_config = CSRFConfig(
        secret=secret,
        cookie_name=f"{prefix}staff-csrftoken",
        cookie_secure=settings.secure_cookies,
        cookie_samesite="strict",
    )
    handlers = exception_handlers()
    handlers[NotAuthorizedException] = _sign_in_first
    metrics = prometheus_config()
    branding = load_branding(settings.branding_file)
    return Litestar(
        route_handlers=[
            *branding_routes(branding),
            health,
            ready,
            MetricsController,
            switch_language,
            create_static_files_router(
                path="/static", directories=[STATIC_DIR], include_in_schema=False
            ),
            AuthController,
            InboxController,
            StaffTasksController,
            StaffTasksApiController,
            CasesController,
            AppointmentsController,
            CalendarController,
            ContactController,
            CustomersController,
            AssistedController,
            StaffEventsController,
            IncidentsController,
            ConversationsController,
            CannedAnswersController,
            CaseExportController,
        ],
        plugins=[
            ChannelsPlugin(
                backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True
            ),
            structlog_plugin(),
        ],
        dependencies={
            "services": services_provider(services),
            "db": Provide(provide_db),
        },
        # The guard reads the services from here (guards take no dependencies); handlers get
        # them injected.
        state=State(
            {
                "services": services,
                "settings": settings,
                "sessions": sessions,
                "redis": redis,
                "engine": engine,
                ERROR_TEMPLATE_KEY: "staff/error.html.j2",
            }
        ),
        stores={
            "staff-sessions": SessionStore(
                redis,
                namespace="staff-sessions",
                revoked_for_seconds=settings.staff_session_absolute_timeout_seconds,
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
        # Signing out is a form whose answer redirects to the provider's end-session page.
        before_send=[security_headers(form_targets=[_origin(settings.staff_oidc_issuer)])],
        csrf_config=csrf_config,
        template_config=_with_globals(
            template_config(branding),
            {**template_globals(settings), "conversation_badges": conversation_badges},
        ),
        # The navigation's conversation badges, counted once for whichever page is shown.
        before_request=count_conversations,
        exception_handlers=handlers,
        openapi_config=None,
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=PanelRequest,
    )


def _with_globals(
    config: TemplateConfig[JinjaTemplateEngine], values: dict[str, Any]
) -> TemplateConfig[JinjaTemplateEngine]:
    """The dashboard's own template globals, beside those every app's pages have."""
    shared = config.engine_callback

    def install(engine: JinjaTemplateEngine) -> None:
        if shared is not None:
            shared(engine)
        engine.engine.globals.update(values)

    config.engine_callback = install
    return config


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory staff.app:app_factory``."""
    return create_app()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
