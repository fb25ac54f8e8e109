"""Real services for the integration tier: PostgreSQL, Redis and the Camunda 8 engine.

One of each per test session. The engine is the official Camunda distribution from Maven
Central; the workers run as a separate process exactly as in production.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.bureau_stub import BureauStub
from devtools.camunda import CamundaEngine, ensure_distribution
from devtools.keycloak import KeycloakServer
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from devtools.smtp_server import SmtpServer
from panel_core import constants as c
from panel_core.cli import deploy, migrate
from panel_core.db.session import create_engine, create_session_factory
from panel_core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    redis: RedisServer
    postgres: PostgresServer
    engine: CamundaEngine
    settings: Settings
    workers_log: Path
    # The credit bureau the workers ask (OK unless a test switches it, for one case or all).
    bureau: BureauStub
    # The mail server the workers send e-mail to (devtools/smtp_server.py); what it receives
    # is in Redis (tests/mail_inbox.py).
    smtp: SmtpServer


def _settings(
    redis: RedisServer, postgres: PostgresServer, engine: CamundaEngine, documents: Path
) -> Settings:
    return Settings(
        document_storage_dir=str(documents),
        database_url=postgres.sqlalchemy_url,
        redis_url=redis.url,
        zeebe_address=engine.grpc_address,
        camunda_rest_url=engine.rest_url,
        demo_mode=True,
        secure_cookies=False,
        session_secret="test-session-secret-0123456789abcdef",
        completion_retry_initial_seconds=0.5,
        completion_retry_max_seconds=2.0,
        completion_dispatch_interval_seconds=0.3,
        camunda_request_timeout_seconds=5.0,
        # Fast pages and generous limits by default; the tests of timing and limits set their
        # own values.
        login_min_response_seconds=0.02,
        login_ip_limit=100_000,
        login_case_limit=10_000,
        hash_key="test-hash-key-0123456789abcdef0123456789",
        worker_http_port=free_port(),
        # The retention tests run the purge themselves, on a fake clock; the workers' own
        # schedule must not purge their cases under them.
        retention_interval_seconds=0.0,
        email_retry_initial_seconds=0.5,
        email_retry_max_seconds=2.0,
        email_dispatch_interval_seconds=0.3,
        smtp_timeout_seconds=5.0,
        # A failing bureau becomes an incident within seconds: 3 attempts, short waits.
        bureau_timeout_seconds=2.0,
        bureau_retry_backoff_seconds=0.5,
        # An unread answer brings its SMS within seconds (tests/test_chat_core.py); the tests
        # of the rules around it run the job themselves, on a fake clock.
        chat_away_sms_after_seconds=2.0,
        chat_away_sms_interval_seconds=0.5,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name in settings.__struct_fields__:
        env[f"PANEL_{name.upper()}"] = (
            str(getattr(settings, name)).lower()
            if isinstance(getattr(settings, name), bool)
            else str(getattr(settings, name))
        )
    return env


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    ensure_distribution()
    with (
        RedisServer() as redis,
        PostgresServer() as postgres,
        BureauStub(log_path=base / "bureau.log") as bureau,
        SmtpServer(redis.url) as smtp,
    ):
        engine = CamundaEngine(
            data_dir=base / "camunda-data",
            redis_url=redis.url,
            exported_value_types=c.EXPORTED_VALUE_TYPES,
            # Kept, so a test can replay every record the engine exported.
            redis_delete_after_acknowledge=False,
        )
        engine.start()
        print(f"\ncamunda {engine.grpc_address} started in {engine.startup_seconds:.1f}s")
        try:
            settings = msgspec.structs.replace(
                _settings(redis, postgres, engine, base / "documents"),
                bureau_url=bureau.url,
                smtp_host=smtp.host,
                smtp_port=smtp.port,
                smtp_security="none",
            )
            migrate(settings.database_url)
            # Deployed as an operator does it, descriptors included.
            asyncio.run(deploy(settings))
            log_path = base / "workers.log"
            with log_path.open("wb") as log:
                workers = spawn_watched(
                    [sys.executable, "-m", "workers.main"],
                    cwd=REPO_ROOT,
                    env=settings_env(settings),
                    stdout=log,
                )
            try:
                time.sleep(0.5)
                assert workers.poll() is None, log_path.read_text()
                yield Stack(redis, postgres, engine, settings, log_path, bureau, smtp)
            finally:
                terminate_watched(workers, timeout=15)
        finally:
            engine.stop()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return stack.settings


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sessions(stack: Stack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    db = create_engine(stack.settings.database_url)
    yield create_session_factory(db)
    await db.dispose()


@pytest.fixture(scope="session")
def app(stack: Stack) -> Litestar:
    from bff.app import create_app

    return create_app(stack.settings)


@pytest.fixture(scope="session")
def keycloak() -> Iterator[KeycloakServer]:
    """The real Keycloak with the repository's realm, started once, when a test needs it."""
    with KeycloakServer() as server:
        print(f"\nkeycloak {server.base_url} started in {server.startup_seconds:.1f}s")
        yield server


@pytest.fixture(scope="session")
def staff_settings(stack: Stack, keycloak: KeycloakServer) -> Settings:
    from tests.keycloak_login import demo_client_secret

    return msgspec.structs.replace(
        stack.settings,
        staff_oidc_issuer=keycloak.issuer,
        staff_oidc_client_secret=demo_client_secret(),
        # Keycloak matches loopback redirect URIs whatever their port (the realm allows
        # http://127.0.0.1/*); the test client never listens there, it is sent the code.
        staff_public_base_url=f"http://127.0.0.1:{free_port()}",
        staff_session_secret="test-staff-session-secret-0123456789abcdef",
    )


@pytest.fixture(scope="session")
def staff_app(staff_settings: Settings) -> Litestar:
    from staff.app import create_app

    return create_app(staff_settings)


def pytest_configure(config: pytest.Config) -> None:
    # Python's default SIGTERM/SIGHUP action ends the run without fixture teardown or exit
    # hooks; as KeyboardInterrupt they take Ctrl-C's path, which stops the stack in order.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    # Engine tests share one engine; keep them after the fast tier so failures there show
    # first and quickly.
    items.sort(key=lambda item: item.get_closest_marker("engine") is not None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fault_report import REPORTS

    if not REPORTS:
        return
    terminalreporter.section("fault injection: what the checker counted")
    for fault, counts in REPORTS:
        terminalreporter.write_line(f"{fault}:")
        for name, value in counts.items():
            terminalreporter.write_line(f"    {name}: {value}")
