"""Side effects outside the database that must follow its transaction: a file written for a
row whose transaction is rolled back is deleted; a file whose row says "removed" is deleted
only once that is committed, so a failed commit never leaves a row pointing at nothing.

Actions are coroutine functions registered on the session; they run (as tasks of the running
event loop) after the outermost transaction commits or ends without committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]
_ON_COMMIT = "panel_on_commit"
_ON_ROLLBACK = "panel_on_rollback"
# Running actions, kept referenced until they finish (and so that tests can wait for them).
_running: set[asyncio.Task[None]] = set()


def on_commit(session: AsyncSession, action: Action) -> None:
    """Run ``action`` once the session's transaction is committed (never if it is not)."""
    session.info.setdefault(_ON_COMMIT, []).append(action)


def on_rollback(session: AsyncSession, action: Action) -> None:
    """Run ``action`` if the session's transaction ends without being committed."""
    session.info.setdefault(_ON_ROLLBACK, []).append(action)


async def _run(action: Action) -> None:
    try:
        await action()
    except Exception:
        log.exception("an after-transaction action failed")


def _schedule(actions: list[Action]) -> None:
    if not actions:
        return
    loop = asyncio.get_running_loop()
    for action in actions:
        task = loop.create_task(_run(action))
        _running.add(task)
        task.add_done_callback(_running.discard)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    _schedule(session.info.pop(_ON_COMMIT, []))


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    # After a commit both lists are gone already; what is left was never committed.
    session.info.pop(_ON_COMMIT, None)
    _schedule(session.info.pop(_ON_ROLLBACK, []))


async def settle() -> None:
    """Wait for every action scheduled so far (tests; an orderly shutdown)."""
    while _running:
        await asyncio.gather(*list(_running), return_exceptions=True)


def pending_actions(session: AsyncSession) -> dict[str, Any]:
    return {
        "commit": len(session.info.get(_ON_COMMIT, [])),
        "rollback": len(session.info.get(_ON_ROLLBACK, [])),
    }


@contextlib.asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """``session.begin_nested()`` whose rollback also undoes the actions registered inside it.

    What a rolled-back savepoint registered would otherwise follow the outer commit (a live
    update about a change that never happened) or never run (a file to discard).
    """
    commit_mark = len(session.info.get(_ON_COMMIT, []))
    rollback_mark = len(session.info.get(_ON_ROLLBACK, []))
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del session.info.get(_ON_COMMIT, [])[commit_mark:]
        undone = session.info.get(_ON_ROLLBACK, [])
        _schedule(undone[rollback_mark:])
        del undone[rollback_mark:]
        raise
