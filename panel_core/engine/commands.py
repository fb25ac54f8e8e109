"""Commands for the engine (start a process instance, cancel one), sent through an outbox.

A command is stored in the transaction that decides it, so it can never be lost between
that decision and the engine: a case is committed with its start command, and the process
starts when the engine takes it — at once, or after an outage or back-pressure, with backoff.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import CommandState, EngineCommand, EngineCommandKind, utcnow
from panel_core.engine.rest import (
    CamundaRestClient,
    EngineNotFoundError,
    EngineRejectedError,
    EngineUnavailableError,
)
from panel_core.observability import current_request_id
from panel_core.outbox.dispatcher import AfterCommit, Lease, OutboxKind

log = logging.getLogger(__name__)


class CommandOutcome(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: CommandOutcome
    process_instance_key: int | None = None
    detail: str = ""


def start_key(case_id: uuid.UUID) -> str:
    return f"start:{case_id}"


def cancel_key(process_instance_key: int) -> str:
    return f"cancel:{process_instance_key}"


async def enqueue_command(
    session: AsyncSession,
    *,
    idempotency_key: str,
    kind: EngineCommandKind,
    case_id: uuid.UUID | None = None,
    process_id: str | None = None,
    process_instance_key: int | None = None,
    variables: Mapping[str, Any] | None = None,
    lease: Lease | None = None,
) -> uuid.UUID | None:
    """Queue a command in the caller's transaction; None if this key was queued before.

    With a ``lease``, the caller delivers it right after the commit (``deliver_leased``)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    command_id = uuid.uuid4()
    now = utcnow()
    result = await session.execute(
        insert(EngineCommand)
        .values(
            id=command_id,
            idempotency_key=idempotency_key,
            kind=kind.value,
            case_id=case_id,
            process_id=process_id,
            process_instance_key=process_instance_key,
            variables=dict(variables or {}),
            state=CommandState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            request_id=current_request_id(),
            **(lease.columns() if lease is not None else {}),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return command_id if getattr(result, "rowcount", 0) else None


# Called in the settling transaction once the engine started a case's instance.
OnStarted = Callable[[AsyncSession, EngineCommand, int], Awaitable[AfterCommit]]


class EngineCommandOutbox(OutboxKind[EngineCommand, CommandResult]):
    name: ClassVar[str] = "engine-command"
    model: ClassVar[type[Any]] = EngineCommand

    def __init__(
        self,
        engine: CamundaRestClient,
        *,
        on_started: OnStarted,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
        lease_seconds: float = 60.0,
    ) -> None:
        super().__init__(
            lease_seconds=lease_seconds,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self._engine = engine
        self._on_started = on_started

    async def send(self, row: EngineCommand) -> CommandResult:
        try:
            if row.kind == EngineCommandKind.START_PROCESS:
                assert row.process_id is not None
                instance = await self._engine.create_process_instance(row.process_id, row.variables)
                return CommandResult(CommandOutcome.DONE, instance.process_instance_key)
            assert row.process_instance_key is not None
            # An instance that ended already is what the command wanted.
            with contextlib.suppress(EngineNotFoundError):
                await self._engine.cancel_process_instance(row.process_instance_key)
            return CommandResult(CommandOutcome.DONE, row.process_instance_key)
        except EngineUnavailableError as exc:
            return CommandResult(CommandOutcome.RETRY, detail=str(exc))
        except EngineNotFoundError as exc:
            # The process is not deployed (yet): an operator's deployment fixes that, and
            # the case is kept waiting rather than given up.
            log.error("engine command %s (%s) waits: %s", row.id, row.kind, exc)
            return CommandResult(CommandOutcome.RETRY, detail=str(exc))
        except EngineRejectedError as exc:
            return CommandResult(CommandOutcome.REJECTED, detail=str(exc))

    def outcome_of_error(self, row: EngineCommand, error: BaseException) -> CommandResult:
        return CommandResult(CommandOutcome.RETRY, detail=f"{type(error).__name__}: {error}")

    async def settle(
        self, session: AsyncSession, row: EngineCommand, outcome: CommandResult
    ) -> AfterCommit:
        row.attempts += 1
        if outcome.outcome is CommandOutcome.DONE:
            row.state = CommandState.DONE
            row.done_at = utcnow()
            row.last_error = None
            if row.kind == EngineCommandKind.START_PROCESS and outcome.process_instance_key:
                row.process_instance_key = outcome.process_instance_key
                return await self._on_started(session, row, outcome.process_instance_key)
            return None
        row.last_error = outcome.detail
        if outcome.outcome is CommandOutcome.REJECTED:
            row.state = CommandState.FAILED
            log.error("engine refused command %s (%s): %s", row.id, row.kind, outcome.detail)
            return None
        self.retry_later(row, outcome.detail)
        return None
