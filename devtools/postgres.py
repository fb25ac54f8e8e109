"""A throw-away PostgreSQL cluster in a temp dir, on a free loopback port.

Built from the distribution's ``initdb``/``pg_ctl``; no Docker, no system
service. Durability is switched off because the cluster is deleted on stop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools._process import ServiceError, group_alive, log_tail, signal_group
from devtools.ports import LOOPBACK, free_port

__all__ = ["PostgresServer", "find_pg_bin_dir"]

_SUPERUSER = "postgres"
# Postgres refuses to run as root; under root the cluster belongs to this OS user.
_OS_USER = "postgres"

_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
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
    cluster down and deletes the temp dir, data included.
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
    def is_running(self) -> bool:
        return self._postmaster_pid is not None and group_alive(self._postmaster_pid)

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """initdb a fresh cluster, start it and create the database."""
        if self.is_running:
            return
        bin_dir = self._bin_dir or find_pg_bin_dir()
        self._os_user = self._cluster_owner()
        tmp = Path(tempfile.mkdtemp(prefix="devtools-pg-"))
        self._tmp_dir = tmp
        atexit.register(self.stop)
        try:
            self._start(bin_dir, tmp, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, bin_dir: Path, tmp: Path, timeout: float) -> None:
        data_dir, socket_dir, log_path = tmp / "data", tmp / "sock", tmp / "postgres.log"
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
                log_path=log_path,
            )  # fmt: skip

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the cluster down (fast mode, SIGKILL as last resort) and delete it."""
        tmp = self._tmp_dir
        if tmp is not None and self._postmaster_pid is None:
            # A start that failed half-way (e.g. pg_ctl timed out) may still
            # have left a postmaster behind.
            with contextlib.suppress(ServiceError):
                self._postmaster_pid = self._read_postmaster_pid(tmp / "data")
        if tmp is not None and self.is_running:
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
            self._kill_leftovers()
        self._postmaster_pid = None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            self._tmp_dir = None
        # Only now: if the clean-up is interrupted, the exit hook still runs.
        atexit.unregister(self.stop)

    def _kill_leftovers(self) -> None:
        # pg_ctl starts the postmaster in its own session, so its pid is also
        # the process group of every backend it forked.
        pgid = self._postmaster_pid
        if pgid is None:
            return
        deadline = time.monotonic() + 10
        while group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise ServiceError(f"PostgreSQL process group {pgid} survived SIGKILL")
            time.sleep(0.05)

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
