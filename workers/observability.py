"""The workers' own HTTP port: liveness, readiness and Prometheus metrics.

Served by uvicorn inside the workers' event loop, on an internal address
(``PANEL_WORKER_HTTP_HOST``/``PANEL_WORKER_HTTP_PORT``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from litestar import Litestar, Response, get
from litestar.di import Provide
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.engine.rest import CamundaRestClient
from panel_core.health import (
    readiness,
    refresh_outbox_gauges,
    refresh_retention_gauges,
    refresh_stream_gauges,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerProbes:
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    engine: CamundaRestClient
    consumer_group: str
    # Whether every loop of the process is still running.
    alive: Callable[[], bool]


def create_observability_app(probes: WorkerProbes) -> Litestar:
    def provide_probes() -> WorkerProbes:
        return probes

    @get("/health", sync_to_thread=False)
    def health(probes: WorkerProbes) -> Response[dict[str, str]]:
        ok = probes.alive()
        return Response({"status": "ok" if ok else "stopped"}, status_code=200 if ok else 503)

    @get("/ready")
    async def ready(probes: WorkerProbes) -> Response[dict[str, object]]:
        checks = await readiness(probes.sessions, probes.redis, probes.engine)
        ok = all(check.ok for check in checks) and probes.alive()
        body: dict[str, object] = {
            "status": "ready" if ok else "not ready",
            "checks": {check.name: check.detail or "ok" for check in checks},
            # Which shard's consumer group this process reads the engine's records with.
            "records_group": probes.consumer_group,
        }
        return Response(body, status_code=200 if ok else 503)

    @get("/metrics")
    async def metrics(probes: WorkerProbes) -> Response[bytes]:
        # Best effort: a scrape during an outage still gives the counters (and /ready says
        # what is down).
        try:
            await refresh_outbox_gauges(probes.sessions)
        except Exception as exc:
            log.warning("outbox gauges not refreshed: %s", exc)
        try:
            await refresh_retention_gauges(probes.sessions)
        except Exception as exc:
            log.warning("retention gauges not refreshed: %s", exc)
        try:
            await refresh_stream_gauges(probes.redis, probes.consumer_group)
        except Exception as exc:
            log.warning("stream gauges not refreshed: %s", exc)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST, status_code=200)

    return Litestar(
        route_handlers=[health, ready, metrics],
        dependencies={"probes": Provide(provide_probes, sync_to_thread=False)},
        openapi_config=None,
        # The workers configured their logging already (JSON lines); Litestar must not.
        logging_config=None,
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The workers' own signal handlers decide when the process stops.
        yield


class ObservabilityServer:
    def __init__(self, app: Litestar, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self.address = f"{host}:{port}"

    async def serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when it cannot listen; here that is one loop failing
            # (and the workers exiting non-zero), not an exit behind the others' backs.
            raise RuntimeError(f"cannot serve /health and /metrics on {self.address}") from exc

    def stop(self) -> None:
        self._server.should_exit = True
