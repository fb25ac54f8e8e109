"""Entry point of the worker process: job workers, engine records and the outboxes.

Every loop waits out outages of PostgreSQL, Redis and the engine on its own, with backoff.
If any loop ends anyway, that is a defect or a fatal misconfiguration: the process stops
everything and exits non-zero, so that the supervisor (systemd, Kubernetes) restarts it and
the failure is seen. A stop asked for by SIGTERM or SIGINT exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import Any

import httpx
from pyzeebe import create_insecure_channel

from panel_core import redis_pool
from panel_core.appointments.reminders import ReminderJob
from panel_core.branding import bank_sms
from panel_core.cases.retention import RetentionJob
from panel_core.clock import SystemClock
from panel_core.conversations.away import AwaySmsJob
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.mirror import consumer_group
from panel_core.engine.rest import CamundaRestClient
from panel_core.identity.service import LoginService
from panel_core.notifications.email_dispatcher import (
    EmailConfigurationError,
    build_sender,
    email_configured,
)
from panel_core.notifications.sms_providers import SmsConfigurationError, build_provider
from panel_core.observability import configure_logging
from panel_core.outboxes import email_outbox, engine_outboxes, sms_outbox
from panel_core.settings import Settings, SettingsError, get_settings
from workers.engine_records import EngineRecordConsumer
from workers.jobs import JobWorker
from workers.observability import ObservabilityServer, WorkerProbes, create_observability_app
from workers.routers import bureau, case_status, invitation

log = logging.getLogger("workers")

EXIT_OK = 0
EXIT_FAILED = 1
# A configuration the workers cannot run with (EX_CONFIG of sysexits.h).
EXIT_CONFIG = 78


async def run(settings: Settings, stopped: asyncio.Event) -> int:
    """Run until ``stopped`` is set (0) or a loop ends on its own (1)."""
    db = create_engine(settings.database_url)
    sessions = create_session_factory(db)
    redis = redis_pool.connect(settings)
    rest = CamundaRestClient(settings.camunda_rest_url, settings.camunda_request_timeout_seconds)
    http = httpx.AsyncClient(timeout=settings.sms_request_timeout_seconds)
    bureau_http = httpx.AsyncClient(timeout=settings.bureau_timeout_seconds)
    channel = create_insecure_channel(grpc_address=settings.zeebe_address)
    try:
        provider = build_provider(settings, redis, http)
        mailer = build_sender(settings) if email_configured(settings) else None
        # pyzeebe's routers with a job intake of our own: at the concurrency limit it waits
        # for a job to end, not 5 s (workers/jobs.py).
        worker = JobWorker(
            channel,
            name=settings.worker_name,
            stream_enabled=settings.worker_stream_jobs,
            max_connection_retries=-1,
        )
        worker.include_router(
            case_status.build_router(
                sessions,
                redis,
                settings.worker_max_concurrency,
                public_base_url=settings.public_base_url,
                branding_file=settings.branding_file,
            )
        )
        login = LoginService(settings, sessions, redis, SystemClock())
        worker.include_router(
            invitation.build_router(settings, sessions, login, settings.worker_max_concurrency)
        )
        worker.include_router(
            bureau.build_router(settings, sessions, bureau_http, settings.worker_max_concurrency)
        )
        records_group = consumer_group(
            settings.exporter_consumer_group,
            settings.record_consumer_shards,
            settings.record_consumer_shard,
        )
        consumer = EngineRecordConsumer(
            redis,
            sessions,
            group=records_group,
            # One stable name per host and process: a restarted worker picks up its own
            # pending records first.
            consumer=f"{socket.gethostname()}-{settings.worker_name}",
            defer_limit_seconds=settings.record_defer_limit_seconds,
            shards=settings.record_consumer_shards,
            shard=settings.record_consumer_shard,
        )
        outboxes = engine_outboxes(settings, sessions, rest, redis)
        sms = sms_outbox(settings, sessions, provider)
        loops: dict[str, Coroutine[Any, Any, None]] = {
            "zeebe-worker": worker.work(),
            "engine-records": consumer.run(),
            "completion-outbox": outboxes.completions.run(
                stopped, settings.completion_dispatch_interval_seconds
            ),
            "engine-command-outbox": outboxes.commands.run(
                stopped, settings.completion_dispatch_interval_seconds
            ),
            "sms-outbox": sms.run(stopped, settings.sms_dispatch_interval_seconds),
        }
        if mailer is not None:
            loops["email-outbox"] = email_outbox(settings, sessions, mailer).run(
                stopped, settings.email_dispatch_interval_seconds
            )
        retention = RetentionJob(
            sessions, LocalDiskStorage(settings.document_storage_dir), SystemClock()
        )
        if settings.retention_interval_seconds > 0:
            loops["retention"] = retention.run(stopped, settings.retention_interval_seconds)
        if settings.appointment_reminder_interval_seconds > 0:
            reminders = ReminderJob(sessions, settings, SystemClock())
            loops["appointment-reminders"] = reminders.run(
                stopped, settings.appointment_reminder_interval_seconds
            )
        if settings.chat_away_sms_interval_seconds > 0:
            away = AwaySmsJob(sessions, settings, SystemClock())
            loops["chat-away-sms"] = away.run(stopped, settings.chat_away_sms_interval_seconds)
        tasks = [asyncio.create_task(coro, name=name) for name, coro in loops.items()]
        server = None
        if settings.worker_http_port:
            probes = WorkerProbes(
                sessions,
                redis,
                rest,
                records_group,
                alive=lambda: not any(task.done() for task in tasks),
            )
            server = ObservabilityServer(
                create_observability_app(probes),
                settings.worker_http_host,
                settings.worker_http_port,
            )
            tasks.append(asyncio.create_task(server.serve(), name="http"))
        log.info("workers started (gateway %s)", settings.zeebe_address)
        stop_wait = asyncio.create_task(stopped.wait())
        done, _ = await asyncio.wait([*tasks, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        status = EXIT_OK
        for task in done:
            if task is stop_wait:
                continue
            status = EXIT_FAILED
            error = task.exception()
            if error is not None:
                log.error("%s failed; stopping the workers", task.get_name(), exc_info=error)
            else:
                log.error("%s ended on its own; stopping the workers", task.get_name())
        consumer.stop()
        stopped.set()
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            await worker.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        stop_wait.cancel()
        return status
    finally:
        await rest.aclose()
        await http.aclose()
        await bureau_http.aclose()
        await redis.aclose()
        await channel.close()
        await db.dispose()


def main() -> int:
    configure_logging()
    try:
        settings = get_settings()
        # The bank's SMS wording is read from its branding file: a broken one stops the
        # workers at start, not at the first message.
        bank_sms(settings.branding_file)
    except (SettingsError, ValueError) as exc:
        log.error("cannot start the workers: %s", exc)
        return EXIT_CONFIG
    stopped = asyncio.Event()

    async def _main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        try:
            return await run(settings, stopped)
        except (SmsConfigurationError, EmailConfigurationError) as exc:
            log.error("cannot start the workers: %s", exc)
            return EXIT_CONFIG

    return asyncio.run(_main())


if __name__ == "__main__":
    sys.exit(main())
