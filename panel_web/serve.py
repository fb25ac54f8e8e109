"""Run the participants' panel or the staff dashboard as several uvicorn workers on one port.

``python -m panel_web.serve bff --workers 4 --port 8000`` (or ``staff``). The workers share
nothing but Redis and PostgreSQL: sessions are in Redis, so a person signed in through one
worker is signed in on all of them, and a logout on one ends the session on all. What they
must share besides is the secret that signs the forms' CSRF tokens (``PANEL_SESSION_SECRET``,
``PANEL_STAFF_SESSION_SECRET`` for the dashboard): without it every worker makes up its own
and a form one worker served is refused by the next. So several workers without the secret
are refused here, except in demo mode, where one is made up for this run and handed to all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import uvicorn

from panel_core.settings import get_settings

APPS = {
    "bff": ("bff.app:app_factory", "PANEL_SESSION_SECRET", 8000),
    "staff": ("staff.app:app_factory", "PANEL_STAFF_SESSION_SECRET", 8001),
}


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(prog="python -m panel_web.serve", description=__doc__)
    out.add_argument("app", choices=sorted(APPS), help="bff: the participants' panel")
    out.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    out.add_argument("--host", default="127.0.0.1")
    out.add_argument("--port", type=int, help="default 8000 (bff), 8001 (staff)")
    out.add_argument("--log-level", default="info")
    return out


def shared_secret(variable: str, workers: int) -> str | None:
    """Why the workers cannot start, or None; makes up the demo's secret where needed."""
    if workers <= 1 or os.environ.get(variable):
        return None
    if get_settings().demo_mode:
        # The workers are spawned with this process's environment: all get the same one.
        os.environ[variable] = secrets.token_urlsafe(32)
        return None
    return (
        f"{workers} workers need one {variable} for all of them: a form signed by one "
        "worker is refused by another otherwise. Set it (the same in every process behind "
        "the balancer, kept across restarts)."
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    target, variable, port = APPS[args.app]
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    problem = shared_secret(variable, args.workers)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    uvicorn.run(
        target,
        factory=True,
        host=args.host,
        port=args.port or port,
        workers=args.workers,
        # The panel reads X-Forwarded-For itself, from PANEL_TRUSTED_PROXIES only;
        # uvicorn's own handling would trust 127.0.0.1 (docs/operations.md).
        proxy_headers=False,
        log_level=args.log_level,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
