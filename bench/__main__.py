"""The benchmark suite: ``python -m bench`` (after the README's setup).

Each benchmark starts the real services it needs (PostgreSQL, Redis, the Camunda engine, the
panel's own processes) on free loopback ports and stops them when it ends, also on failure or
Ctrl-C. Every figure is a ratio to a baseline measured in the same run, on the same machine,
checked against its target; the table goes to stdout and every figure, with its baseline and
target, to a JSON file. ``--only`` runs some of them; ``--strict`` makes a missed target a
non-zero exit (a benchmark that fails to run always is).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Figure, table

# In the order they run: the engine-to-panel pipeline first, the cheap ones last.
SUITE = ("pipeline", "consumer", "web", "chat_delivery", "case_search", "upload_memory")
DEFAULT_OUTPUT = Path("bench-results.json")


def _collect(name: str) -> list[Figure]:
    module = importlib.import_module(f"bench.{name}")
    figures: Callable[[], list[Figure]] | None = getattr(module, "figures", None)
    if figures is not None:
        return figures()
    result: list[Figure] = asyncio.run(module.run())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SUITE)}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(SUITE)
    unknown = sorted(set(chosen) - set(SUITE))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    # SIGTERM and SIGHUP take Ctrl-C's path, so every runner's cleanup runs.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)

    figures: list[Figure] = []
    failed: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            got = _collect(name)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            got = []
        timings[name] = round(time.monotonic() - started, 1)
        figures.extend(got)
        if got:
            print(table(got), flush=True)

    print("\n== all figures")
    print(table(figures))
    for name, reason in failed.items():
        print(f"{name}: did not run: {reason}")
    report: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "seconds": timings,
        "failed": failed,
        "figures": [f.as_json() for f in figures],
    }
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {args.output}")
    missed = [f.name for f in figures if f.met is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    if failed:
        return 2
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
