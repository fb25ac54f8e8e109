"""What the benchmarks share to run the panel's own processes: their environment from a
``Settings``, and waiting until one answers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import httpx

from panel_core.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``PANEL_*`` variables that give a child process these settings."""
    env = dict(os.environ)
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        env[f"PANEL_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, within: float = 60) -> None:
    """Until ``url`` answers 200; the process's log if it exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {within:.0f}s")
