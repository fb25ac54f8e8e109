"""A throw-away PostgreSQL cluster in a temp dir, on a free loopback port.

Built from the distribution's ``initdb``/``pg_ctl``; no Docker, no system
service. Syncing to disk is switched off: the cluster survives its own
restarts and crashes (:meth:`PostgresServer.restart`, :meth:`PostgresServer.kill`),
which is what the tests need, not a crash of the machine; it is deleted on stop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools._process import ServiceError, group_alive, log_tail
from devtools.ports import LOOPBACK, free_port
from devtools.reaper import (
    ReaperError,
    kill_cluster,
    release_directory,
    release_postmaster,
    running_postmaster,
    watch_directory,
    watch_postmaster,
)

__all__ = ["PostgresServer", "find_pg_bin_dir"]

_SUPERUSER = "postgres"
# Postgres refuses to run as root; under root the cluster belongs to this OS user.
_OS_USER = "postgres"

_SERVER_SETTINGS = {
    # Nothing is synced to disk, but every commit is written to the WAL before it returns: a
    # killed server (PostgresServer.kill) loses no committed row, a crashed machine would.
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "'32MB'",
}


def find_pg_bin_dir() -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``createdb``.

    Debian keeps them off PATH in /usr/lib/postgresql/<major>/bin, so ask
    ``pg_config`` first and otherwise take the highest installed major.
    """
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidate = Path(result.stdout.strip())
        if result.returncode == 0 and (candidate / "initdb").is_file():
            return candidate

    def major(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return -1.0

    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True):
        if (candidate / "initdb").is_file():
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    raise ServiceError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them, "
        "e.g. `apt-get install postgresql`"
    )


def _clean_env() -> dict[str, str]:
    # PGHOST/PGDATABASE/PGSERVICE etc. from the caller's shell would silently
    # redirect the client tools to some other server.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class PostgresServer:
    """A private PostgreSQL cluster with one database, reachable over TCP.

    Listens on ``127.0.0.1:<port>`` and on a unix socket in its temp dir;
    local connections are trusted (no password). :meth:`stop` shuts the
    cluster down and deletes the temp dir, data included; :meth:`restart` and
    :meth:`kill` keep it, and the next :meth:`start` serves the same data on
    the same port.
    """

    def __init__(
        self,
        database: str = "customer_panel",
        *,
        port: int | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise ValueError(f"unsupported database name {database!r}")
        self.database: str = database
        self.user: str = _SUPERUSER
        self.host: str = LOOPBACK
        self.port: int = port if port is not None else free_port()
        self._bin_dir = bin_dir
        self._tmp_dir: Path | None = None
        self._postmaster_pid: int | None = None
        self._os_user: pwd.struct_passwd | None = None

    # -- addresses ---------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        """Async SQLAlchemy URL (asyncpg driver) over TCP."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq/asyncpg connection URL over TCP (for psql, asyncpg.connect)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def tmp_dir(self) -> Path | None:
        return self._tmp_dir

    @property
    def socket_dir(self) -> Path | None:
        return self._tmp_dir / "sock" if self._tmp_dir is not None else None

    @property
    def data_dir(self) -> Path | None:
        return self._tmp_dir / "data" if self._tmp_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._tmp_dir / "postgres.log" if self._tmp_dir is not None else None

    @property
    def postmaster_pid(self) -> int | None:
        return self._postmaster_pid

    @property
    def is_running(self) -> bool:
        return self._postmaster_pid is not None and group_alive(self._postmaster_pid)

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """initdb a fresh cluster, start it and create the database.

        After :meth:`kill` or a failed start of a kept cluster, start the kept
        cluster instead: PostgreSQL replays its WAL and the data is back.
        """
        if self.is_running:
            return
        bin_dir = self._bin_dir or find_pg_bin_dir()
        self._os_user = self._cluster_owner()
        if self._tmp_dir is not None:
            self._resume(bin_dir, self._tmp_dir, timeout)
            return
        tmp = Path(tempfile.mkdtemp(prefix="devtools-pg-"))
        self._tmp_dir = tmp
        watch_directory(tmp)
        atexit.register(self.stop)
        try:
            self._start(bin_dir, tmp, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, bin_dir: Path, tmp: Path, timeout: float) -> None:
        data_dir, socket_dir = tmp / "data", tmp / "sock"
        socket_dir.mkdir()
        if self._os_user is not None:
            for path in (tmp, socket_dir):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

        self._run_as_owner(
            [
                str(bin_dir / "initdb"),
                "--pgdata", str(data_dir),
                "--username", _SUPERUSER,
                "--auth", "trust",
                "--encoding", "UTF8",
                # Independent of whatever locales the host has generated.
                "--locale", "C",
                # The cluster is disposable; syncing its files only costs time.
                "--no-sync",
            ],
            what="initdb",
        )  # fmt: skip
        settings = {
            **_SERVER_SETTINGS,
            "port": str(self.port),
            "listen_addresses": f"'{self.host}'",
            "unix_socket_directories": f"'{socket_dir}'",
        }
        with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# devtools.postgres\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

        self._pg_ctl_start(bin_dir, tmp, timeout)

        if self.database != "postgres":
            self._run(
                [
                    str(bin_dir / "createdb"),
                    "--host", self.host,
                    "--port", str(self.port),
                    "--username", _SUPERUSER,
                    self.database,
                ],
                what="createdb",
                log_path=tmp / "postgres.log",
            )  # fmt: skip

    def _resume(self, bin_dir: Path, tmp: Path, timeout: float) -> None:
        # Still registered after a kill(); once is enough.
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        try:
            self._remove_stale_lock_files(tmp)
            self._pg_ctl_start(bin_dir, tmp, timeout)
        except BaseException:
            # The cluster that did not come back stays on disk for a look at its log; the
            # exit hook deletes it with the rest.
            self._shut_down(timeout)
            raise

    def _pg_ctl_start(self, bin_dir: Path, tmp: Path, timeout: float) -> None:
        data_dir, log_path = tmp / "data", tmp / "postgres.log"
        # Before pg_ctl: if this process dies while the server comes up, the reaper still
        # finds the postmaster through its postmaster.pid.
        watch_postmaster(data_dir)
        self._run_as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "--pgdata", str(data_dir),
                "--log", str(log_path),
                "--wait",
                "--timeout", str(max(1, int(timeout))),
                "--silent",
                "start",
            ],
            what="pg_ctl start",
            log_path=log_path,
        )  # fmt: skip
        self._postmaster_pid = self._read_postmaster_pid(data_dir)

    def _remove_stale_lock_files(self, tmp: Path) -> None:
        # A killed postmaster leaves its lock files behind. PostgreSQL itself refuses to start
        # while the pid they name is alive, and after a crash that pid may belong to anyone by
        # now (another test stack's postmaster, say), so they go once the postmaster is gone.
        data_dir = tmp / "data"
        pid = running_postmaster(data_dir)
        if pid is not None:
            raise ServiceError(f"a postmaster (pid {pid}) still serves {data_dir}")
        (data_dir / "postmaster.pid").unlink(missing_ok=True)
        (tmp / "sock" / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)
        (tmp / "sock" / f".s.PGSQL.{self.port}").unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the cluster down (fast mode, SIGKILL as last resort) and delete it."""
        self._shut_down(timeout)
        tmp = self._tmp_dir
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            release_directory(tmp)
            self._tmp_dir = None
        # Only now: if the clean-up is interrupted, the exit hook still runs.
        atexit.unregister(self.stop)

    def restart(self, timeout: float = 60.0) -> None:
        """Fast shutdown, then start the same cluster on the same port; the data stays."""
        self._shut_down(timeout)
        self.start(timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would; the data stays.

        The next :meth:`start` replays the WAL: every committed transaction is back.
        """
        tmp = self._tmp_dir
        if tmp is None:
            return
        self._kill_leftovers()
        self._postmaster_pid = None
        release_postmaster(tmp / "data")

    def _shut_down(self, timeout: float) -> None:
        tmp = self._tmp_dir
        if tmp is None:
            return
        if self._postmaster_pid is None:
            # A start that failed half-way (e.g. pg_ctl timed out) may still
            # have left a postmaster behind.
            self._postmaster_pid = running_postmaster(tmp / "data")
        if self.is_running:
            bin_dir = self._bin_dir or find_pg_bin_dir()
            # A failed pg_ctl stop falls through to the SIGKILL below.
            with contextlib.suppress(ServiceError):
                self._run_as_owner(
                    [
                        str(bin_dir / "pg_ctl"),
                        "--pgdata", str(tmp / "data"),
                        "--mode", "fast",
                        "--wait",
                        "--timeout", str(max(1, int(timeout))),
                        "--silent",
                        "stop",
                    ],
                    what="pg_ctl stop",
                )  # fmt: skip
        # Also backends a dead postmaster left behind; each leads a process group of its own.
        self._kill_leftovers()
        self._postmaster_pid = None
        release_postmaster(tmp / "data")

    def _kill_leftovers(self) -> None:
        if self._tmp_dir is None:
            return
        try:
            kill_cluster(self._tmp_dir / "data")
        except ReaperError as exc:
            raise ServiceError(str(exc)) from exc

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def _cluster_owner() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(_OS_USER)
        except KeyError:
            raise ServiceError(
                f"running as root, but there is no {_OS_USER!r} OS user to own the "
                "cluster (PostgreSQL refuses to run as root); install the postgresql "
                "package or run as a normal user"
            ) from None

    @staticmethod
    def _read_postmaster_pid(data_dir: Path) -> int:
        try:
            first_line = (data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first_line)
        except (OSError, IndexError, ValueError) as exc:
            raise ServiceError(f"cannot read postmaster.pid in {data_dir}: {exc}") from exc

    def _run_as_owner(
        self, argv: Sequence[str], *, what: str, log_path: Path | None = None
    ) -> None:
        owner = self._os_user
        if owner is None:
            self._run(argv, what=what, log_path=log_path)
            return
        env = _clean_env()
        env.update(HOME=owner.pw_dir, USER=owner.pw_name, LOGNAME=owner.pw_name)
        self._run(
            argv,
            what=what,
            log_path=log_path,
            env=env,
            user=owner.pw_uid,
            group=owner.pw_gid,
        )

    def _run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env if env is not None else _clean_env(),
            # The caller's cwd may be unreadable for the postgres user.
            cwd=self._tmp_dir,
            user=user,
            group=group,
            # Drop root's supplementary groups along with the uid.
            extra_groups=[] if user is not None else None,
            check=False,
        )
        if result.returncode != 0:
            details = (result.stdout + result.stderr).strip()
            if log_path is not None:
                details += f"\n--- {log_path.name} ---\n{log_tail(log_path)}"
            raise ServiceError(f"{what} failed (exit {result.returncode}):\n{details}")

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
