"""The worker process under a supervisor's eyes: an outage is waited out, a defect or a
configuration it cannot run with ends it non-zero, a stop asked for ends it with 0.

These workers talk to databases and engine addresses of their own (a closed port, an empty
database, an empty Redis database), never to the session's engine: they must not take jobs
or records away from the workers the other tests rely on.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import msgspec
import pytest

from devtools._process import http_get
from devtools.ports import free_port
from devtools.reaper import spawn_watched, terminate_watched
from panel_core.settings import Settings
from tests.conftest import REPO_ROOT, Stack, settings_env

pytestmark = [pytest.mark.engine]

CLOSED = "127.0.0.1:9"


def isolated(stack: Stack, **changes: object) -> Settings:
    return msgspec.structs.replace(
        stack.settings,
        zeebe_address=CLOSED,
        camunda_rest_url=f"http://{CLOSED}",
        redis_url=stack.redis.url.rsplit("/", 1)[0] + "/2",
        exporter_consumer_group=f"isolated-{uuid.uuid4().hex[:8]}",
        worker_http_port=free_port(),
        **changes,
    )


@contextmanager
def workers(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = spawn_watched(
            [sys.executable, "-m", "workers.main"],
            cwd=REPO_ROOT,
            env=settings_env(settings),
            stdout=out,
        )
    try:
        yield process
    finally:
        terminate_watched(process, timeout=15)


def wait_exit(process: subprocess.Popen[bytes], within: float) -> int | None:
    try:
        return process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return None


def get_json(url: str) -> tuple[int, dict[str, object]]:
    status, body = http_get(url, timeout=5)
    return status, json.loads(body)


def wait_http(url: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            http_get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {within}s")


def test_the_workers_wait_out_a_database_outage(stack: Stack, tmp_path: Path) -> None:
    settings = isolated(stack, database_url=f"postgresql+asyncpg://postgres@{CLOSED}/none")
    with workers(settings, tmp_path / "workers.log") as process:
        base = f"http://127.0.0.1:{settings.worker_http_port}"
        wait_http(f"{base}/health")
        # Before, a refused connection ended the loops and the process exited with 0.
        assert wait_exit(process, within=8) is None, (tmp_path / "workers.log").read_text()
        status, health = get_json(f"{base}/health")
        assert status == 200 and health == {"status": "ok"}
        status, ready = get_json(f"{base}/ready")
        assert status == 503
        checks = ready["checks"]
        assert isinstance(checks, dict)
        assert checks["redis"] == "ok"
        assert checks["database"] != "ok" and checks["engine"] != "ok"
        process.send_signal(signal.SIGTERM)
        assert wait_exit(process, within=20) == 0
    assert "waiting" in (tmp_path / "workers.log").read_text()


@pytest.mark.asyncio(loop_scope="session")
async def test_the_workers_exit_non_zero_on_a_defect(stack: Stack, tmp_path: Path) -> None:
    """A database without the panel's tables is no outage: the loops stop, the process exits
    1, and a supervisor restarts it where someone will notice."""
    name = f"empty_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(stack.postgres.dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = stack.settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    with workers(isolated(stack, database_url=url), tmp_path / "workers.log") as process:
        assert wait_exit(process, within=30) == 1, (tmp_path / "workers.log").read_text()
    assert "stopping the workers" in (tmp_path / "workers.log").read_text()


def test_the_workers_refuse_a_configuration_they_cannot_run_with(
    stack: Stack, tmp_path: Path
) -> None:
    settings = isolated(stack, sms_provider="smsapi", smsapi_token="")
    with workers(settings, tmp_path / "workers.log") as process:
        assert wait_exit(process, within=30) == 78
    assert "PANEL_SMSAPI_TOKEN" in (tmp_path / "workers.log").read_text()
