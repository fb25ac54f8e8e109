"""The audit log: who did what to which case, from where. Insert-only.

Every action of a participant, a member of staff or a worker is recorded here with the
actor; what participants may see of it is the activity feed (``panel_core/audit/activity.py``),
written beside it and never containing staff names.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import AuditEvent
from panel_core.identity.actors import Actor, Client, ParticipantActor, StaffActor

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
DOCUMENT_REPLACED: Final = "document.replaced"
DOCUMENT_SIGNED: Final = "document.signed"
CASE_STATUS_CHANGED: Final = "case.status-changed"
CASE_OPENED: Final = "case.opened"
# The retention job purged a closed case's personal data (the kinds and row counts).
CASE_PURGED: Final = "case.purged"
# The case entered a final status and its decision SMS was queued for the participants.
DECISION_SENT: Final = "decision.sent"
# The staff dashboard.
STAFF_SIGNED_IN: Final = "staff.signed-in"
STAFF_SIGNED_OUT: Final = "staff.signed-out"
TASK_CLAIMED: Final = "task.claimed"
TASK_UNCLAIMED: Final = "task.unclaimed"
TASK_REASSIGNED: Final = "task.reassigned"
TASK_RESCHEDULED: Final = "task.rescheduled"
CASE_VIEWED: Final = "case.viewed"
CASES_SEARCHED: Final = "cases.searched"
TASK_VIEWED: Final = "task.viewed"


def record(
    session: AsyncSession,
    event: str,
    *,
    case_id: uuid.UUID | None = None,
    participant_id: uuid.UUID | None = None,
    actor: Actor | None = None,
    client: Client | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    **details: Any,
) -> None:
    """Add an event to the session's transaction; it is stored when the caller commits."""
    if client is not None:
        ip, user_agent = client.ip, client.user_agent
    kind = "system"
    staff_id = staff_name = None
    if isinstance(actor, StaffActor):
        kind, staff_id, staff_name = "staff", actor.subject, actor.name
        details.setdefault("username", actor.username)
    elif isinstance(actor, ParticipantActor):
        kind = "participant"
        participant_id = participant_id or actor.participant_id
        case_id = case_id or actor.case_id
    elif participant_id is not None:
        kind = "participant"
    session.add(
        AuditEvent(
            event=event,
            case_id=case_id,
            participant_id=participant_id,
            actor_kind=kind,
            staff_id=staff_id,
            staff_name=staff_name,
            ip=ip,
            user_agent=(user_agent or "")[:512] or None,
            details=details,
        )
    )
