"""The BFF's logs, request ids, health, readiness and metrics.

* Logs are JSON lines (structlog through Litestar's plugin), in the shape the workers and
  the command line write (``panel_core.observability``). The request log names the method,
  path and status only: query strings carry invitation codes, and headers carry cookies.
* Every request has an id: the caller's ``X-Request-ID`` if it is a plain one, a new one
  otherwise. It is on every log line of the request, in the answer's ``X-Request-ID``, and
  on the outbox rows the request writes, so the workers' lines about them carry it too.
* ``/health`` says the process answers; ``/ready`` asks PostgreSQL, Redis and the engine;
  ``/metrics`` is Prometheus' (bearer ``PANEL_METRICS_TOKEN``; open in demo mode only).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Literal

import structlog
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders, State
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.middleware import ASGIMiddleware
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from panel_core.health import readiness
from panel_core.observability import (
    REQUEST_ID_HEADER,
    json_processors,
    request_id_from,
    stdlib_formatter,
)

RESPONSE_LOG_FIELDS: tuple[Literal["status_code"]] = ("status_code",)


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        sent = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER.encode()),
            None,
        )
        request_id = request_id_from(sent)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await next_app(scope, receive, send_with_id)


_CLIENT_ERRORS: set[int | type[Exception]] = set(range(400, 500))


def structlog_plugin() -> StructlogPlugin:
    return StructlogPlugin(
        StructlogConfig(
            structlog_logging_config=StructLoggingConfig(
                processors=json_processors(),
                logger_factory=structlog.PrintLoggerFactory(),
                pretty_print_tty=False,
                standard_lib_logging_config=LoggingConfig(
                    root={"level": "INFO", "handlers": ["queue_listener"]},
                    formatters={"standard": {"()": stdlib_formatter}},
                    log_exceptions="always",
                ),
                log_exceptions="always",
                # A refusal (401, 404, 409 ...) is an answer, not a fault: the access log has it.
                disable_stack_trace=_CLIENT_ERRORS,
            ),
            middleware_logging_config=LoggingMiddlewareConfig(
                request_log_fields=("method", "path"),
                response_log_fields=RESPONSE_LOG_FIELDS,
            ),
        )
    )


def prometheus_config() -> PrometheusConfig:
    # One series per route, not per URL: ids in paths would grow without bound.
    return PrometheusConfig(app_name="customer-panel", prefix="panel_http", group_path=True)


def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    settings = connection.app.state.settings
    expected: str = settings.metrics_token
    if not expected:
        if settings.demo_mode:
            return
        raise NotFoundException("Not found")
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotFoundException("Not found")


class MetricsController(PrometheusController):
    include_in_schema = False
    guards = [metrics_guard]  # noqa: RUF012 - Litestar reads class attributes


@get("/ready", include_in_schema=False)
async def ready(request: Request[Any, Any, State]) -> Response[dict[str, Any]]:
    state = request.app.state
    checks = await readiness(state.sessions, state.redis, state.engine)
    ok = all(check.ok for check in checks)
    if not ok:
        logging.getLogger(__name__).warning(
            "not ready: %s", {c.name: c.detail for c in checks if not c.ok}
        )
    return Response(
        {
            "status": "ready" if ok else "not ready",
            "checks": {check.name: "ok" if check.ok else "failing" for check in checks},
        },
        status_code=200 if ok else 503,
    )
