"""A throw-away ``redis-server`` on a free loopback port, durable across its restarts."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from devtools._process import ServiceError, kill_group, log_tail, spawn, terminate_group
from devtools.ports import LOOPBACK, free_port
from devtools.reaper import release_directory, watch_directory

__all__ = ["AppendFsync", "RedisServer", "find_redis_server", "redis_ping"]

AppendFsync = Literal["always", "everysec", "no"]


def find_redis_server() -> Path:
    """Locate the ``redis-server`` binary or explain how to get it."""
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "redis-server not found on PATH; install it, e.g. `apt-get install redis-server`"
        )
    return Path(found)


def redis_ping(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING on ``host:port``.

    Speaks RESP directly so the check does not depend on redis-py.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # "-LOADING" or "-NOAUTH" mean "alive but not usable", which is not ready.
    return reply.startswith(b"+PONG")


class RedisServer:
    """``redis-server`` living in its own temp dir, with an append-only file by default.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    :meth:`stop` kills the server and removes the temp dir. :meth:`restart`
    and :meth:`kill` (SIGKILL, as a crash) keep the temp dir, and the next
    :meth:`start` comes back on the same port with the data loaded from the
    AOF. With ``appendfsync="everysec"`` (the default, and what production
    should run at least) a crash may lose up to about a second of writes;
    ``"always"`` loses none and costs a sync per write. ``appendonly=False``
    keeps nothing across a restart (``--save ""`` is always set, so there is
    no RDB snapshot either).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        executable: Path | None = None,
        appendonly: bool = True,
        appendfsync: AppendFsync = "everysec",
    ) -> None:
        self.port: int = port if port is not None else free_port()
        self.host: str = LOOPBACK
        self.appendonly: bool = appendonly
        self.appendfsync: AppendFsync = appendfsync
        self._executable = executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def tmp_dir(self) -> Path | None:
        """Working directory of the server, kept across restarts (None when stopped)."""
        return self._tmp_dir

    @property
    def log_path(self) -> Path | None:
        return self._tmp_dir / "redis.log" if self._tmp_dir is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ping(self) -> bool:
        return redis_ping(self.port, self.host)

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers PING (its AOF loaded, if any)."""
        if self.is_running:
            return
        executable = self._executable or find_redis_server()
        resuming = self._tmp_dir is not None
        if self._tmp_dir is None:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="devtools-redis-"))
            watch_directory(self._tmp_dir)
        tmp_dir = self._tmp_dir
        log_path = tmp_dir / "redis.log"
        argv = [
            str(executable),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--dir", str(tmp_dir),
            "--daemonize", "no",
        ]  # fmt: skip
        # Still registered after a kill(); once is enough.
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        try:
            self._proc = spawn(argv, log_path=log_path, cwd=tmp_dir)
            self._wait_ready(self._proc, log_path, timeout)
        except BaseException:
            # A server that failed to come back keeps its data for a look at what went wrong;
            # the exit hook removes it with the rest.
            if resuming:
                self._halt(timeout)
            else:
                self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ping():
            if proc.poll() is not None:
                raise ServiceError(f"redis-server exited during start-up:\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"redis-server not ready after {timeout:.0f}s:\n{log_tail(log_path)}"
                )
            time.sleep(0.05)

    def _halt(self, timeout: float) -> None:
        if self._proc is not None:
            terminate_group(self._proc, timeout)
            self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``) and delete its temp dir."""
        self._halt(timeout)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            release_directory(self._tmp_dir)
            self._tmp_dir = None
        # Only now: if the clean-up is interrupted, the exit hook still runs.
        atexit.unregister(self.stop)

    def restart(self, timeout: float = 15.0) -> None:
        """Shut down (SIGTERM: Redis syncs its AOF) and start again with the same dir and port."""
        self._halt(timeout)
        self.start(timeout)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; the temp dir stays for :meth:`start`."""
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
