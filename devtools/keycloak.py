"""A real Keycloak for the staff dashboard's OpenID Connect sign-in, without Docker.

The official ``keycloak-quarkus-dist`` comes from Maven Central and is unpacked once into the
per-user cache next to Camunda. The cached distribution is never written to: each
:class:`KeycloakServer` runs ``bin/kc.sh start-dev`` from a home of its own, which holds its
own copies of the few files Keycloak writes (``bin/kc.sh``, ``conf/``, ``lib/quarkus-run.jar``,
``lib/quarkus/``) plus ``data/`` (the H2 database and ``data/import``, the directory that
``--import-realm`` reads), and links to the shared read-only rest (``lib/lib``, ``lib/app``,
``themes``, ``providers``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devtools._process import (
    ServiceError,
    cache_lock,
    default_cache_dir,
    file_size,
    group_alive,
    http_get,
    kill_group,
    log_tail,
    maven_artifact,
    port_in_use,
    signal_group,
    spawn,
    terminate_group,
    unpack_tarball,
)
from devtools.camunda import CamundaError, find_java_home, java_major_version
from devtools.ports import LOOPBACK, free_ports
from devtools.reaper import release_directory, watch_directory

__all__ = [
    "DEFAULT_REALM_FILE",
    "KEYCLOAK_VERSION",
    "KeycloakAdmin",
    "KeycloakError",
    "KeycloakServer",
    "ensure_keycloak_distribution",
]

KEYCLOAK_VERSION = "26.4.0"
# The password of every demo user in keycloak/customer-panel-realm.json.
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a public demo realm's users

DEFAULT_REALM_FILE = (
    Path(__file__).resolve().parent.parent / "keycloak" / "customer-panel-realm.json"
)

_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz"
_REPO_PATH = Path(
    "org/keycloak/keycloak-quarkus-dist",
    KEYCLOAK_VERSION,
    f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz",
)
_DIST_DIR_NAME = f"keycloak-{KEYCLOAK_VERSION}"

# Build-time options: Keycloak persists them in lib/quarkus and re-augments (15-25 s on two
# cores) whenever a start names different ones, so every start passes exactly these.
_BUILD_OPTIONS: tuple[str, ...] = ("--db=dev-file", "--health-enabled=true")

# Inherited variables with these names or prefixes would reconfigure the server behind our
# back (Keycloak binds every KC_* and QUARKUS_* variable; kc.sh reads the others).
_SCRUBBED_ENV_PREFIXES = ("KC_", "KEYCLOAK_", "QUARKUS_", "JAVA_OPTS")
_SCRUBBED_ENV_NAMES = frozenset(
    {"JAVA", "JAVA_ADD_OPENS", "JAVA_LOCALE", "DEBUG", "DEBUG_PORT", "DEBUG_SUSPEND", "PRINT_ENV"}
)

# Copied into each server's home, with conf/ and lib/quarkus/ (see _prepare_home); the rest of
# the distribution is linked, read-only.
_PRIVATE_FILES = ("bin/kc.sh", "lib/quarkus-run.jar")
_SHARED_LINKS = ("lib/lib", "lib/app", "themes", "providers")


class KeycloakError(ServiceError):
    """The Keycloak distribution or server could not be prepared or started."""


@dataclass(frozen=True)
class KeycloakAdmin:
    """The master realm's bootstrap administrator."""

    username: str
    password: str


# -- distribution ----------------------------------------------------------------


def _distribution_complete(dist: Path) -> bool:
    return (
        (dist / "bin" / "kc.sh").is_file()
        and (dist / "lib" / "quarkus-run.jar").is_file()
        and (dist / "lib" / "lib" / "main").is_dir()
    )


def ensure_keycloak_distribution(cache_dir: Path | None = None) -> Path:
    """The unpacked Keycloak distribution dir, fetching and unpacking it on first use."""
    cache = (cache_dir or default_cache_dir()).absolute()
    target = cache / _DIST_DIR_NAME
    if _distribution_complete(target):
        return target
    with cache_lock(cache):
        if not _distribution_complete(target):
            if target.exists():
                raise KeycloakError(
                    f"{target} exists but is not a complete distribution; delete it"
                )
            unpack_tarball(
                maven_artifact(_ARTIFACT, _REPO_PATH, KeycloakError),
                cache,
                target,
                top_dir=_DIST_DIR_NAME,
                complete=_distribution_complete,
                expected="bin/kc.sh",
                error=KeycloakError,
            )
    return target


def _dev_build_dir(cache: Path, extra_env: Mapping[str, str]) -> Path:
    """Where the first server's development build is kept for the next ones.

    Named after everything that can change the build, so a server with other build options
    finds no build of its own there and makes one.
    """
    key = json.dumps([KEYCLOAK_VERSION, _BUILD_OPTIONS, sorted(extra_env.items())])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache / f"{_DIST_DIR_NAME}-dev-build-{digest}"


def _save_dev_build(home: Path, build_dir: Path) -> None:
    if build_dir.is_dir():
        return
    with cache_lock(build_dir.parent):
        if build_dir.is_dir():
            return
        staging = Path(tempfile.mkdtemp(prefix=".dev-build-", dir=build_dir.parent))
        try:
            shutil.copytree(home / "lib" / "quarkus", staging / "quarkus")
            staging.rename(build_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _realm_name(realm_file: Path) -> str:
    try:
        document: dict[str, Any] = json.loads(realm_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeycloakError(f"cannot read the realm file {realm_file}: {exc}") from exc
    name = document.get("realm")
    if not isinstance(name, str) or not name:
        raise KeycloakError(f"{realm_file} names no realm (its top-level 'realm' key)")
    return name


# -- server ----------------------------------------------------------------------


class KeycloakServer:
    """Keycloak in development mode with one realm imported, on free loopback ports.

    The HTTP port and the management port (health) are chosen once in the constructor, so
    :meth:`restart` comes back on the same addresses. The server keeps its state (Keycloak's
    home with the H2 database, and the log) in a temp dir of its own unless ``state_dir`` is
    given; :meth:`stop` removes that temp dir, :meth:`restart` and :meth:`kill` keep it, and
    the next start finds the realm, its users and their sessions in the database there. A
    ``state_dir`` of the caller's is never removed, and a database that already has the realm
    keeps it as it is (the realm file is imported only where the realm does not exist yet),
    as it keeps the admin created at its first start, whatever ``admin_password`` says now.
    """

    def __init__(
        self,
        realm_file: Path = DEFAULT_REALM_FILE,
        *,
        http_port: int | None = None,
        management_port: int | None = None,
        state_dir: Path | None = None,
        cache_dir: Path | None = None,
        java_home: Path | None = None,
        admin_username: str = "admin",
        admin_password: str | None = None,
        max_heap: str = "512m",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.realm_file: Path = realm_file.absolute()
        self.realm: str = _realm_name(self.realm_file)
        picked = iter(free_ports([http_port, management_port].count(None)))
        self.http_port: int = http_port if http_port is not None else next(picked)
        self.management_port: int = management_port if management_port is not None else next(picked)
        self.cache_dir: Path | None = cache_dir
        self.java_home: Path | None = java_home
        self.admin: KeycloakAdmin = KeycloakAdmin(
            admin_username, admin_password or secrets.token_urlsafe(18)
        )
        self.max_heap = max_heap
        self.extra_env: dict[str, str] = dict(extra_env or {})
        self.startup_seconds: float | None = None
        self._own_dir = state_dir is None
        self._state_dir: Path | None = None if state_dir is None else state_dir.absolute()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- addresses -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def issuer(self) -> str:
        """The realm's issuer, as its tokens and discovery document name it."""
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def admin_console_url(self) -> str:
        return f"{self.base_url}/admin/master/console/"

    @property
    def management_url(self) -> str:
        """The management interface: ``/health``, ``/health/ready``, ``/health/live``."""
        return f"http://{LOOPBACK}:{self.management_port}"

    @property
    def state_dir(self) -> Path | None:
        """Where the server keeps its state, kept across restarts; None before the first start."""
        return self._state_dir

    @property
    def home_dir(self) -> Path | None:
        """Keycloak's own home (``kc.home.dir``) in :attr:`state_dir`."""
        return self._state_dir / "home" if self._state_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._state_dir / "keycloak.log" if self._state_dir is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until the realm's OIDC discovery document answers."""
        if self.is_running:
            return
        cache = (self.cache_dir or default_cache_dir()).absolute()
        dist = ensure_keycloak_distribution(cache)
        java_home = self._java_home()
        busy = [port for port in (self.http_port, self.management_port) if port_in_use(port)]
        if busy:
            raise KeycloakError(f"ports already in use on {LOOPBACK}: {busy}")
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="devtools-keycloak-"))
            watch_directory(self._state_dir)
        home = self._state_dir / "home"
        log_path = self._state_dir / "keycloak.log"
        build_dir = _dev_build_dir(cache, self.extra_env)
        # Still registered after a kill(); once is enough.
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        try:
            self._prepare_home(dist, home, build_dir)
            self._log_offset = file_size(log_path)
            started = time.monotonic()
            self._proc = spawn(
                [str(home / "bin" / "kc.sh"), "start-dev", *self._options()],
                log_path=log_path,
                env=self._environment(java_home),
                cwd=home,
            )
            self._wait_ready(self._proc, log_path, started + timeout, timeout)
            self.startup_seconds = time.monotonic() - started
            # A build left unsaved only costs the next server its own rebuild.
            with contextlib.suppress(OSError):
                _save_dev_build(home, build_dir)
        except BaseException:
            # Covers Ctrl-C too: a server we gave up on must not outlive us. Its dir stays
            # until stop() (or the exit hook), for a look at what went wrong.
            self._halt(30.0)
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down (SIGTERM, SIGKILL after ``timeout``) and delete its temp dir."""
        self._halt(timeout)
        if self._own_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            release_directory(self._state_dir)
            self._state_dir = None
        # Only now: if the clean-up is interrupted, the exit hook still runs.
        atexit.unregister(self.stop)

    def restart(self, timeout: float = 180.0) -> None:
        """Shut down and start again on the same state dir and ports."""
        self._halt(30.0)
        self.start(timeout)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its state dir stays for :meth:`start`."""
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None

    def discovery(self) -> dict[str, Any]:
        """The realm's OpenID Connect discovery document."""
        status, body = http_get(self.discovery_url, timeout=5)
        if status != 200:
            raise KeycloakError(f"GET {self.discovery_url} returned {status}: {body[:200]!r}")
        document: dict[str, Any] = json.loads(body)
        return document

    # -- internals -----------------------------------------------------------

    def _java_home(self) -> Path:
        if self.java_home is not None:
            return self.java_home
        try:
            return find_java_home()
        except CamundaError as exc:
            raise KeycloakError(f"Keycloak {KEYCLOAK_VERSION} needs the same JDK: {exc}") from exc

    def _prepare_home(self, dist: Path, home: Path, build_dir: Path) -> None:
        for name in _PRIVATE_FILES:
            # kc.sh finds its home through `readlink -f $0`, and Quarkus writes its build next
            # to the quarkus-run.jar it was started from, both through symbolic links: so
            # these two are copies, or Keycloak would use and rewrite the shared cache.
            if not (home / name).is_file():
                (home / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(dist / name, home / name)
        for name in _SHARED_LINKS:
            link = home / name
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(dist / name, target_is_directory=True)
        if not (home / "conf").is_dir():
            shutil.copytree(dist / "conf", home / "conf")
        if not (home / "lib" / "quarkus").is_dir():
            # The distribution ships a production build; start-dev would rebuild it first.
            source = build_dir / "quarkus" if build_dir.is_dir() else dist / "lib" / "quarkus"
            shutil.copytree(source, home / "lib" / "quarkus")
        imports = home / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.realm_file, imports / f"{self.realm}-realm.json")

    def _options(self) -> list[str]:
        return [
            *_BUILD_OPTIONS,
            f"--http-host={LOOPBACK}",
            f"--http-port={self.http_port}",
            # The management interface (health) listens on http-host too.
            f"--http-management-port={self.management_port}",
            "--hostname-strict=false",
            "--import-realm",
        ]

    def _environment(self, java_home: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_SCRUBBED_ENV_PREFIXES) and key not in _SCRUBBED_ENV_NAMES
        }
        append: list[str] = []
        major = java_major_version(java_home)
        if major is not None and major >= 24:
            # jboss-threads resets thread locals by reflection, which JDK 24+ refuses unless
            # java.lang is opened (requests then fail in executor threads); Netty's off-heap
            # allocator uses sun.misc.Unsafe, which JDK 24+ warns about on every start.
            append += [
                "--add-opens=java.base/java.lang=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow",
            ]
        env.update(
            JAVA_HOME=str(java_home),
            # Not JAVA_OPTS: that would replace kc.sh's GC, metaspace and encoding defaults.
            JAVA_OPTS_KC_HEAP=f"-Xms64m -Xmx{self.max_heap}",
            KC_BOOTSTRAP_ADMIN_USERNAME=self.admin.username,
            KC_BOOTSTRAP_ADMIN_PASSWORD=self.admin.password,
        )
        if append:
            env["JAVA_OPTS_APPEND"] = " ".join(append)
        env.update(self.extra_env)
        return env

    def _ready(self) -> bool:
        try:
            document = self.discovery()
        except (OSError, KeycloakError, ValueError):
            return False
        # Only trust a document naming *our* realm on *our* port, in case some other
        # process answers on a port we thought was free.
        return document.get("issuer") == self.issuer

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], log_path: Path, deadline: float, timeout: float
    ) -> None:
        while not self._ready():
            if proc.poll() is not None:
                raise KeycloakError(
                    f"Keycloak exited with code {proc.returncode} during start-up; "
                    f"last lines of {log_path}:\n{log_tail(log_path, self._log_offset)}"
                )
            if time.monotonic() > deadline:
                raise KeycloakError(
                    f"Keycloak not ready after {timeout:.0f}s; "
                    f"last lines of {log_path}:\n{log_tail(log_path, self._log_offset)}"
                )
            time.sleep(0.25)

    def _halt(self, timeout: float) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        # kc.sh first runs a JVM as its child that checks the build (and exits with 10 for kc.sh
        # to exec the server), and the shell dies at once on SIGTERM: waiting for the leader
        # alone could SIGKILL a JVM that is still shutting down, so wait for the whole group.
        signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while group_alive(proc.pid) and time.monotonic() < deadline:
            proc.poll()
            time.sleep(0.1)
        terminate_group(proc, max(0.0, deadline - time.monotonic()))

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
