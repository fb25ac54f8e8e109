"""The services devtools starts end with the process that started them, and survive their own
restarts and crashes with their data."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from devtools.postgres import PostgresServer, find_pg_bin_dir
from devtools.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent

# Written without the code under test, so that the checks do not trust it.


@dataclass(frozen=True)
class _Proc:
    pid: int
    start: int


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, process group and start time of ``pid``, None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[19])


def _identify(pid: int | None) -> _Proc:
    assert pid is not None
    stat = _stat(pid)
    assert stat is not None, f"pid {pid} is not running"
    return _Proc(pid, stat[2])


def _running(proc: _Proc) -> bool:
    stat = _stat(proc.pid)
    # A zombie has exited; this machine's init reaps orphans only now and then.
    return stat is not None and stat[0] not in "ZXx" and stat[2] == proc.start


def _group_members(leader: _Proc) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if (
            stat is not None
            and stat[1] == leader.pid
            and stat[0] not in "ZXx"
            and stat[2] >= leader.start
        ):
            members.append(int(entry.name))
    return members


def _cluster(data_dir: Path) -> list[int]:
    """The live processes of a PostgreSQL cluster: each backend leads a group of its own, but
    they all work in the data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        try:
            cwd = (entry / "cwd").readlink()
        except OSError:
            continue
        if stat is not None and stat[0] not in "ZXx" and cwd == data_dir.resolve():
            found.append(int(entry.name))
    return found


def _kill_cluster(data_dir: Path) -> None:
    for pid in _cluster(data_dir):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill_group(leader: _Proc) -> None:
    if _group_members(leader):
        with suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)


def _wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


# -- the owner dies --------------------------------------------------------------------------

_CHILD = """
import json, signal, subprocess, sys, time
from devtools.postgres import PostgresServer
from devtools.reaper import reaper_pid, spawn_watched, terminate_watched
from devtools.redis_server import RedisServer

if sys.argv[1] == "graceful":
    # What tests/conftest.py does: SIGTERM takes Ctrl-C's path.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
with RedisServer() as redis, PostgresServer() as postgres:
    sleeper = spawn_watched(["sleep", "600"], stdout=subprocess.DEVNULL)
    try:
        print(json.dumps({
            "redis": redis.pid,
            "postmaster": postgres.postmaster_pid,
            "sleeper": sleeper.pid,
            "reaper": reaper_pid(),
            "dirs": [str(redis.tmp_dir), str(postgres.tmp_dir)],
        }), flush=True)
        time.sleep(600)
    finally:
        terminate_watched(sleeper, timeout=5)
"""


@contextmanager
def _owner(mode: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """A child Python that starts Redis, PostgreSQL and a sleeper and reports their pids."""
    with log.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, mode],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert child.stdout is not None
    started: dict[str, Any] = {}
    procs: dict[str, _Proc] = {}
    try:
        ready, _, _ = select.select([child.stdout], [], [], 90)
        line = child.stdout.readline() if ready else b""
        assert line, f"the child did not report its services:\n{log.read_text()}"
        started = json.loads(line)
        names = ("redis", "postmaster", "sleeper", "reaper")
        # Every one that runs is recorded before anything is asserted, for the clean-up below.
        for name in names:
            pid = started.get(name)
            if isinstance(pid, int) and _stat(pid) is not None:
                procs[name] = _identify(pid)
        assert set(procs) == set(names), f"not running: {started}"
        started["procs"] = procs
        yield child, started
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        # Whatever the reaper did not stop, the test does, so a failure leaves nothing behind.
        for proc in procs.values():
            _kill_group(proc)
        for directory in started.get("dirs", []):
            _kill_cluster(Path(directory) / "data")
            shutil.rmtree(directory, ignore_errors=True)


def _leftovers(procs: dict[str, _Proc], pg_data: Path) -> dict[str, list[int]]:
    left = {name: _group_members(proc) for name, proc in procs.items() if name != "reaper"}
    left["postgres backends"] = _cluster(pg_data)
    if _running(procs["reaper"]):
        left["reaper"] = [procs["reaper"].pid]
    return {name: pids for name, pids in left.items() if pids}


@pytest.mark.parametrize(
    ("sig", "mode"),
    [
        pytest.param(signal.SIGKILL, "plain", id="SIGKILL"),
        # Python's default for SIGTERM: exit at once, no finally blocks, no exit hooks.
        pytest.param(signal.SIGTERM, "plain", id="SIGTERM-unhandled"),
    ],
)
def test_services_die_with_an_owner_that_is_killed(
    tmp_path: Path, sig: signal.Signals, mode: str
) -> None:
    with _owner(mode, tmp_path / "child.log") as (child, started):
        procs: dict[str, _Proc] = started["procs"]
        pg_data = Path(started["dirs"][1]) / "data"
        reaper = procs["reaper"]
        # The reaper is the safety net, not the one who handles Ctrl-C or a closed terminal.
        os.kill(reaper.pid, signal.SIGINT)
        os.kill(reaper.pid, signal.SIGHUP)
        time.sleep(0.3)
        assert _running(reaper)
        assert all(_running(proc) for proc in procs.values())
        assert len(_cluster(pg_data)) > 1

        os.kill(child.pid, sig)
        child.wait(timeout=10)
        assert _wait_until(lambda: not _leftovers(procs, pg_data), 10), _leftovers(procs, pg_data)
        # The temp dirs go with them (the reaper removes them after the processes).
        assert _wait_until(lambda: not any(Path(d).exists() for d in started["dirs"]), 5)


def test_services_stop_in_order_when_an_owner_that_handles_sigterm_gets_it(
    tmp_path: Path,
) -> None:
    with _owner("graceful", tmp_path / "child.log") as (child, started):
        procs: dict[str, _Proc] = started["procs"]
        pg_data = Path(started["dirs"][1]) / "data"
        os.kill(child.pid, signal.SIGTERM)
        child.wait(timeout=30)
        # It went the KeyboardInterrupt way, not Python's default death by SIGTERM.
        assert child.returncode != -signal.SIGTERM
        # The owner stopped everything itself before it exited, and waited for its reaper.
        assert not _leftovers(procs, pg_data), _leftovers(procs, pg_data)
        reaper_stat = _stat(procs["reaper"].pid)
        assert reaper_stat is None or reaper_stat[2] != procs["reaper"].start, "reaper unreaped"
        assert not any(Path(d).exists() for d in started["dirs"])


# -- Redis -------------------------------------------------------------------------------------


@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
def test_redis_comes_back_from_a_crash_with_its_data(appendfsync: str) -> None:
    server = RedisServer(appendfsync=appendfsync)  # type: ignore[arg-type]
    try:
        server.start()
        client = redis.Redis(port=server.port)
        entry = client.xadd("zeebe:USER_TASK", {"record": '{"key": 1}'})
        client.set("panel:key", "kept")
        client.close()
        if appendfsync == "everysec":
            # What everysec may lose on a crash is the last second.
            time.sleep(1.5)
        assert server.pid is not None
        crashed = _identify(server.pid)
        port, directory = server.port, server.tmp_dir

        server.kill()
        assert not _running(crashed)
        assert server.tmp_dir == directory and directory is not None and directory.exists()

        server.start()
        assert server.port == port
        client = redis.Redis(port=server.port)
        assert [e[0] for e in client.xrange("zeebe:USER_TASK")] == [entry]
        assert client.get("panel:key") == b"kept"
        client.close()
    finally:
        directory = server.tmp_dir
        server.stop()
    assert directory is not None and not directory.exists()


def test_redis_restart_keeps_data_and_port() -> None:
    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        client.xadd("zeebe:FORM", {"record": "{}"})
        client.set("panel:key", "kept")
        client.close()
        port, old_pid = server.port, server.pid

        server.restart()

        assert server.port == port and server.pid != old_pid
        client = redis.Redis(port=server.port)
        assert client.xlen("zeebe:FORM") == 1
        assert client.get("panel:key") == b"kept"
        client.close()


def test_redis_without_aof_keeps_nothing_across_a_restart() -> None:
    with RedisServer(appendonly=False) as server:
        client = redis.Redis(port=server.port)
        client.set("panel:key", "gone")
        client.close()

        server.restart()

        client = redis.Redis(port=server.port)
        assert client.get("panel:key") is None
        client.close()


# -- PostgreSQL ------------------------------------------------------------------------------


def _psql(server: PostgresServer, sql: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(
        [str(find_pg_bin_dir() / "psql"), server.dsn, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgres_comes_back_from_a_crash_with_its_data() -> None:
    server = PostgresServer()
    try:
        server.start()
        _psql(server, "CREATE TABLE kept (id int PRIMARY KEY, note text)")
        _psql(server, "INSERT INTO kept VALUES (1, 'committed before the crash')")
        assert server.postmaster_pid is not None
        postmaster = _identify(server.postmaster_pid)
        port, directory = server.port, server.tmp_dir

        assert directory is not None and len(_cluster(directory / "data")) > 1

        server.kill()
        assert not _running(postmaster)
        # The backends too, which a postmaster's death alone would leave to exit in their time.
        assert not _cluster(directory / "data")
        assert (directory / "data" / "postmaster.pid").exists()

        server.start()
        assert server.port == port and server.tmp_dir == directory
        assert _psql(server, "SELECT note FROM kept") == "committed before the crash"
    finally:
        directory = server.tmp_dir
        server.stop()
    assert directory is not None and not directory.exists()


def test_postgres_restart_keeps_data_and_port() -> None:
    with PostgresServer() as server:
        _psql(server, "CREATE TABLE kept (id int)")
        _psql(server, "INSERT INTO kept VALUES (7)")
        port, old_pid = server.port, server.postmaster_pid

        server.restart()

        assert server.port == port and server.postmaster_pid != old_pid
        assert _psql(server, "SELECT id FROM kept") == "7"


def test_postgres_starts_after_a_crash_whose_pid_was_recycled() -> None:
    """After a crash, postmaster.pid may name a live process; PostgreSQL alone would refuse."""
    with PostgresServer() as server:
        _psql(server, "CREATE TABLE kept (id int)")
        server.kill()
        assert server.data_dir is not None
        # A live process of the cluster's owner now has the crashed postmaster's pid.
        owner = server.data_dir.stat()
        impostor = subprocess.Popen(["sleep", "60"], user=owner.st_uid, group=owner.st_gid)
        try:
            pid_file = server.data_dir / "postmaster.pid"
            lines = pid_file.read_text().splitlines()
            pid_file.write_text("\n".join([str(impostor.pid), *lines[1:]]) + "\n")

            server.start()

            assert _psql(server, "SELECT count(*) FROM kept") == "0"
            assert impostor.poll() is None
        finally:
            impostor.kill()
            impostor.wait()


# -- Camunda -----------------------------------------------------------------------------------

_ENGINE_CHILD = """
import json, sys, time
from pathlib import Path
from devtools.camunda import CamundaEngine
from devtools.reaper import reaper_pid

engine = CamundaEngine(Path(sys.argv[1]))
engine.start()
print(json.dumps({"broker": engine.pid, "reaper": reaper_pid()}), flush=True)
time.sleep(600)
"""


@pytest.mark.engine
def test_the_engine_dies_with_an_owner_that_is_killed(tmp_path: Path) -> None:
    with (tmp_path / "child.log").open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _ENGINE_CHILD, str(tmp_path / "camunda-data")],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert child.stdout is not None
    procs: list[_Proc] = []
    try:
        ready, _, _ = select.select([child.stdout], [], [], 180)
        line = child.stdout.readline() if ready else b""
        assert line, (tmp_path / "child.log").read_text()
        started = json.loads(line)
        broker = _identify(started["broker"])
        procs.append(broker)
        reaper = _identify(started["reaper"])
        procs.append(reaper)
        assert _group_members(broker)

        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)

        # SIGTERM first; a broker that takes longer than the grace period is SIGKILLed.
        assert _wait_until(lambda: not _group_members(broker), 15), _group_members(broker)
        assert _wait_until(lambda: not _running(reaper), 5)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        for proc in procs:
            _kill_group(proc)
