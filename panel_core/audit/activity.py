"""The participants' activity feed: what happened in their case, as they may know it.

Written beside the audit log by the actions participants may know of; it names a
participant only by id (the overview shows their role) and the bank only as the bank.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import ActivityEvent

TASK_COMPLETED: Final = "task.completed"
DOCUMENT_UPLOADED: Final = "document.uploaded"
DOCUMENT_SIGNED: Final = "document.signed"
DOCUMENT_REVIEWED: Final = "document.reviewed"
DOCUMENT_REPLACED: Final = "document.replaced"
CASE_STATUS_CHANGED: Final = "case.status-changed"


def record(
    session: AsyncSession,
    kind: str,
    *,
    case_id: uuid.UUID,
    participant_id: uuid.UUID | None = None,
    **details: Any,
) -> None:
    """Add an item to the feed in the caller's transaction."""
    session.add(
        ActivityEvent(case_id=case_id, kind=kind, participant_id=participant_id, details=details)
    )
