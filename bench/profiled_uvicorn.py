"""uvicorn under cProfile, counting CPU time: ``python -m bench.profiled_uvicorn OUT ARGS…``.

CPU time, not wall time: on a shared machine the wall clock also counts other processes'
turns. uvicorn raises the SIGTERM it stopped on again once it has shut down; here that ends
the run normally, so the profile is written to OUT. Run it with one worker (uvicorn runs it
in this process then).
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from types import FrameType

from uvicorn.main import main as uvicorn_main


def _stop(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    signal.signal(signal.SIGTERM, _stop)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        uvicorn_main(args, standalone_mode=False)
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
