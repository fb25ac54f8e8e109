"""Process, HTTP and distribution-cache helpers shared by the service runners (private)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from devtools.ports import LOOPBACK
from devtools.reaper import (
    ProcessGroup,
    ReaperError,
    kill_watched,
    spawn_watched,
    terminate_watched,
)

# Developers often have HTTP(S)_PROXY exported; a probe of 127.0.0.1 must never
# be routed through it, so this opener ignores the proxy environment.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(RuntimeError):
    """A service could not be prepared, started or stopped."""


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, appending stdout and stderr to ``log_path``.

    A new session makes the child the leader of its own process group, so
    ``stop`` can signal everything it forked, and a Ctrl-C aimed at the
    caller's terminal does not reach it before the caller can shut it down
    in order. The group is registered with this process's reaper
    (:mod:`devtools.reaper`), which stops it if the caller dies without doing so.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return spawn_watched(argv, stdout=log, env=env, cwd=cwd)


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to a process group; return False if the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` still runs (zombies do not count)."""
    return ProcessGroup(pgid, None).alive()


def terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group led by ``proc``, SIGKILL it after ``timeout``."""
    terminate_watched(proc, timeout)


def kill_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL the process group led by ``proc``, as a crash would, and wait until it is gone."""
    try:
        kill_watched(proc, timeout)
    except (ReaperError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(str(exc)) from exc


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET ``url`` without any proxy; return status and body, also for 4xx/5xx.

    Connection failures raise ``OSError`` (``URLError`` is a subclass).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url!r}")
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def log_tail(path: Path, offset: int = 0, lines: int = 60) -> str:
    """The last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 if it does not exist yet."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def port_in_use(port: int) -> bool:
    """Whether something listens on ``port`` of the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so that TIME_WAIT leftovers of our own previous run
        # (restart) do not count; only a live listener makes the bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


# -- distributions from Maven Central --------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/customer-panel``, or ``~/.cache/customer-panel``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "customer-panel"


def maven_repo() -> Path:
    return Path.home() / ".m2" / "repository"


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the cache's exclusive lock, so that one process at a time fills it."""
    # Parallel test workers would otherwise download and unpack 300 MB twice.
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maven_artifact(
    artifact: str, repo_path: Path, error: type[ServiceError] = ServiceError
) -> Path:
    """Path of ``artifact`` in the local Maven repo, fetching it with mvn if missing."""
    repo = maven_repo()
    path = repo / repo_path
    if path.is_file():
        return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise error(
            f"{path} is missing and `mvn` is not on PATH to fetch {artifact}; "
            "install Maven (e.g. `apt-get install maven`)"
        )
    result = subprocess.run(
        [
            mvn, "-B", "-q", "dependency:get",
            f"-Dartifact={artifact}",
            "-Dtransitive=false",
            # Pin the local repo so the file lands where we look for it, even
            # if a settings.xml moves the default elsewhere.
            f"-Dmaven.repo.local={repo}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0 or not path.is_file():
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise error(f"mvn could not fetch {artifact} (exit {result.returncode}):\n{output}")
    return path


def unpack_tarball(
    tarball: Path,
    cache_dir: Path,
    target: Path,
    *,
    top_dir: str,
    complete: Callable[[Path], bool],
    expected: str,
    error: type[ServiceError] = ServiceError,
) -> None:
    """Unpack ``top_dir`` of ``tarball`` as ``target``; ``complete`` checks what was unpacked.

    ``expected`` is what the error names as missing when ``complete`` fails.
    """
    # Unpack beside the target and rename at the end: a crash or Ctrl-C mid-way
    # leaves only a stray staging dir, never a half-filled distribution.
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir))
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(staging, filter="data")
        unpacked = staging / top_dir
        if not complete(unpacked):
            raise error(f"{tarball} does not contain {top_dir}/{expected}")
        unpacked.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_atomically(source: Path, target: Path) -> None:
    """Copy a file so that ``target`` is either absent or complete, never half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
