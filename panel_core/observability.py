"""Structured JSON logs, the same shape from the BFF, the workers and the command line.

Every line carries what is bound in the current context: the request id of the HTTP request
that caused it, and the case id and process instance key as soon as they are known. The
request id travels with the rows a request writes into an outbox, so the workers' log lines
about delivering a completion or starting a case carry the id of the request that asked.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any, Final

import structlog

REQUEST_ID_HEADER: Final = "x-request-id"
# A request id a proxy or channel sends is kept only if it is short and plain; anything
# else could carry a log-injection payload.
_REQUEST_ID_SHAPE: Final = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

# Processors of structlog's own loggers; the last one renders.
SHARED_PROCESSORS: Final[list[Any]] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def json_processors() -> list[Any]:
    return [
        *SHARED_PROCESSORS,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]


def stdlib_formatter() -> structlog.stdlib.ProcessorFormatter:
    """Renders records of the standard ``logging`` module as the same JSON lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on standard error, for processes without Litestar's logging plugin."""
    structlog.configure(
        processors=json_processors(),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def request_id_from(value: str | None) -> str:
    """The caller's request id if it is a plain one, otherwise a new one."""
    if value and _REQUEST_ID_SHAPE.match(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind values (case id, process instance key, request id) to every log line within."""
    present = {key: value for key, value in values.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield
