"""The audit log: who did what to which case, from where. Insert-only."""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import AuditEvent

LOGIN_SUCCEEDED: Final = "login.succeeded"
LOGIN_FAILED: Final = "login.failed"
LOGIN_LOCKED: Final = "login.locked"
LOGIN_CODE_SENT: Final = "login.code-sent"
INVITATION_SENT: Final = "invitation.sent"
LOGOUT: Final = "logout"
TASK_COMPLETED: Final = "task.completed"
DOCUMENT_UPLOADED: Final = "document.uploaded"
DOCUMENT_DOWNLOADED: Final = "document.downloaded"
DOCUMENT_REMOVED: Final = "document.removed"
DOCUMENT_REVIEWED: Final = "document.reviewed"
DOCUMENT_SIGNED: Final = "document.signed"
CASE_STATUS_CHANGED: Final = "case.status-changed"
CASE_OPENED: Final = "case.opened"


def record(
    session: AsyncSession,
    event: str,
    *,
    case_id: uuid.UUID | None = None,
    participant_id: uuid.UUID | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    **details: Any,
) -> None:
    """Add an event to the session's transaction; it is stored when the caller commits."""
    session.add(
        AuditEvent(
            event=event,
            case_id=case_id,
            participant_id=participant_id,
            ip=ip,
            user_agent=(user_agent or "")[:512] or None,
            details=details,
        )
    )
