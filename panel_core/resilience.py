"""Telling an outage from a defect, and waiting an outage out.

Every loop that talks to PostgreSQL, Redis or the engine asks ``is_transient`` about what it
caught: an outage (refused or dropped connection, timeout, a server starting up or shutting
down, a serialization conflict) is waited out with backoff; anything else is a defect that
must surface. Errors arrive wrapped (SQLAlchemy around asyncpg, asyncpg around ``OSError``),
so the whole chain of causes is looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator

from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

# PostgreSQL error classes that a retry can get past: connection exceptions (08), operator
# intervention such as a shutdown or a server still starting (57P0x), serialization failure
# and deadlock (40001, 40P01), too many connections (53300).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "53300", "57P01", "57P02", "57P03"})
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    # ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket and DNS errors,
    # and asyncio's "Multiple exceptions" when every address of a host refused.
    OSError,
    TimeoutError,
    redis_errors.ConnectionError,  # includes BusyLoadingError (a Redis still loading its AOF)
    redis_errors.TimeoutError,
    redis_errors.TryAgainError,
    sa_errors.DisconnectionError,
    sa_errors.TimeoutError,  # the connection pool had nothing to give
)
# Local file-system failures are OSErrors too, but no outage of a server: they are defects.
_LOCAL_OS_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "orig", None),  # SQLAlchemy's DBAPIError
            getattr(current, "__cause_exc__", None),
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_transient(exc: BaseException) -> bool:
    """Whether the failure is an outage that retrying later can get past."""
    for cause in _causes(exc):
        if isinstance(cause, _TRANSIENT_TYPES) and not isinstance(cause, _LOCAL_OS_ERRORS):
            return True
        if isinstance(cause, sa_errors.DBAPIError) and cause.connection_invalidated:
            return True
        state = _sqlstate(cause)
        if state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
        # asyncpg names its connection failures without always giving a SQLSTATE.
        if type(cause).__name__ in {
            "ConnectionDoesNotExistError",
            "CannotConnectNowError",
            "ConnectionFailureError",
            "PostgresConnectionError",
            "TooManyConnectionsError",
        }:
            return True
    return False


def backoff_delay(
    attempt: int,
    initial: float,
    maximum: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with "equal jitter": between half and all of the capped delay.

    The jitter keeps processes that failed together (an outage hits every one of them at
    once) from retrying together.
    """
    capped = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    return capped / 2 + capped / 2 * rng()


def jittered(seconds: float, rng: Callable[[], float] = random.random) -> float:
    """A polling interval, spread by ±20 % so that many pollers drift apart."""
    return seconds * (0.8 + 0.4 * rng())


async def sleep_unless(stopped: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stopped`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), timeout=max(0.0, seconds))
