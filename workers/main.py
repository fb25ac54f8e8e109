"""Entry point of the worker process: job workers, engine records and completion delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

import httpx
from pyzeebe import ZeebeWorker, create_insecure_channel
from redis.asyncio import Redis

from panel_core.auth.service import LoginService
from panel_core.clock import SystemClock
from panel_core.completions import CompletionDelivery
from panel_core.db.session import create_engine, create_session_factory
from panel_core.engine.rest import CamundaRestClient
from panel_core.settings import Settings, get_settings
from panel_core.sms.dispatcher import SmsDispatcher
from panel_core.sms.providers import build_provider
from workers.completion_dispatcher import run_dispatcher
from workers.engine_records import EngineRecordConsumer
from workers.routers import case_status, invitation
from workers.sms_dispatcher import run_sms_dispatcher

log = logging.getLogger("workers")


async def run(settings: Settings, stopped: asyncio.Event) -> None:
    db = create_engine(settings.database_url)
    sessions = create_session_factory(db)
    redis = Redis.from_url(settings.redis_url)
    rest = CamundaRestClient(settings.camunda_rest_url, settings.camunda_request_timeout_seconds)
    channel = create_insecure_channel(grpc_address=settings.zeebe_address)
    worker = ZeebeWorker(
        channel,
        name=settings.worker_name,
        stream_enabled=settings.worker_stream_jobs,
        max_connection_retries=-1,
    )
    worker.include_router(
        case_status.build_router(sessions, redis, settings.worker_max_concurrency)
    )
    login = LoginService(settings, sessions, redis, SystemClock())
    worker.include_router(
        invitation.build_router(settings, sessions, login, settings.worker_max_concurrency)
    )
    consumer = EngineRecordConsumer(
        redis,
        sessions,
        group=settings.exporter_consumer_group,
        # One stable name per host and process: a restarted worker picks up its own pending
        # records first.
        consumer=f"{socket.gethostname()}-{settings.worker_name}",
    )
    delivery = CompletionDelivery(
        sessions,
        rest,
        retry_initial_seconds=settings.completion_retry_initial_seconds,
        retry_max_seconds=settings.completion_retry_max_seconds,
    )
    http = httpx.AsyncClient(timeout=settings.sms_request_timeout_seconds)
    sms = SmsDispatcher(
        sessions,
        build_provider(settings, redis, http),
        max_attempts=settings.sms_max_attempts,
        retry_initial_seconds=settings.sms_retry_initial_seconds,
        retry_max_seconds=settings.sms_retry_max_seconds,
    )
    tasks = [
        asyncio.create_task(worker.work(), name="zeebe-worker"),
        asyncio.create_task(consumer.run(), name="engine-records"),
        asyncio.create_task(
            run_dispatcher(delivery, settings.completion_dispatch_interval_seconds, stopped),
            name="completion-dispatcher",
        ),
        asyncio.create_task(
            run_sms_dispatcher(sms, settings.sms_dispatch_interval_seconds, stopped),
            name="sms-dispatcher",
        ),
    ]
    log.info("workers started (gateway %s)", settings.zeebe_address)
    stop_wait = asyncio.create_task(stopped.wait())
    done, _ = await asyncio.wait([*tasks, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stop_wait and task.exception() is not None:
            log.error("%s stopped", task.get_name(), exc_info=task.exception())
    consumer.stop()
    stopped.set()
    await worker.stop()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    stop_wait.cancel()
    await rest.aclose()
    await http.aclose()
    await redis.aclose()
    await channel.close()
    await db.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stopped = asyncio.Event()

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        await run(get_settings(), stopped)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
