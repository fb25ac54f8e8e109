"""The end of a case: until when its participants may sign in, and what they see then.

A case closes when it enters a final status, or when its process ends without one (a case
cancelled in the engine). The descriptor's ``afterClosure`` rule for that outcome is applied
once, at closure, and kept on the case: a descriptor deployed later changes neither the
access window nor the purge date of a case already closed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases import case_types
from panel_core.cases.case_types import AfterClosure
from panel_core.db.models import Case

# What a participant sees, from least to most. A running case shows everything.
STATUS = "status"
DOCUMENTS = "documents"
EVERYTHING = "everything"
_LEVELS = (STATUS, DOCUMENTS, EVERYTHING)


def covers(shown: str, needed: str) -> bool:
    """Whether a participant who is shown ``shown`` may open what needs ``needed``."""
    return _LEVELS.index(shown) >= _LEVELS.index(needed)


def close(case: Case, rule: AfterClosure, at: datetime) -> None:
    """Close the case under ``rule``; a later final status closes it anew under its own."""
    case.closed_at = at
    case.access_until = at + timedelta(days=rule.access_days)
    case.access_shows = rule.shows
    case.purge_after = at + timedelta(days=rule.purge_after_days)
    case.purge_kinds = list(rule.purge)


def reopen(case: Case) -> None:
    """A model that leaves a final status for a running one opens the case again."""
    if case.purged_at is not None:
        return
    case.closed_at = None
    case.access_until = None
    case.access_shows = None
    case.purge_after = None
    case.purge_kinds = None


def participant_access(case: Case, now: datetime) -> str | None:
    """What the case's participants see at ``now``; None once their access has ended."""
    return _access(case.purged_at, case.closed_at, case.access_until, case.access_shows, now)


def _access(
    purged_at: datetime | None,
    closed_at: datetime | None,
    access_until: datetime | None,
    access_shows: str | None,
    now: datetime,
) -> str | None:
    if purged_at is not None:
        return None
    if closed_at is None:
        return EVERYTHING
    if access_until is None or now >= access_until:
        return None
    return access_shows or STATUS


async def case_access(session: AsyncSession, case_id: object, now: datetime) -> str | None:
    """:func:`participant_access` of a case by its id; None for a case that is not there.

    Every participant request asks this, so it reads the four columns it needs, not the case.
    """
    row = (
        await session.execute(
            select(Case.purged_at, Case.closed_at, Case.access_until, Case.access_shows).where(
                Case.id == case_id
            )
        )
    ).one_or_none()
    return _access(*row, now) if row is not None else None


async def instance_ended(session: AsyncSession, process_instance_key: int, at: datetime) -> bool:
    """A case's process ended: close the case under its status's rule, unless it is closed.

    Only the case's own instance counts (not a called process's); a case the panel does not
    know (an instance started outside it) is left alone.
    """
    case = await session.scalar(
        select(Case).where(Case.process_instance_key == process_instance_key).with_for_update()
    )
    if case is None or case.closed_at is not None or case.purged_at is not None:
        return False
    descriptor = await case_types.of_case(session, case)
    close(case, descriptor.closure_rule(case.status), at)
    return True


def as_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
