"""Process and HTTP helpers shared by the service runners (private)."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

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
