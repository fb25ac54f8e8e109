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
# An operator's or team manager's retry of a failed automatic step (an incident), with the
# reason they gave and how each of its steps went, whether it succeeded or not.
INCIDENT_RETRIED: Final = "incident.retried"
# Appointments (panel_core/appointments) and the staff calendar.
APPOINTMENT_BOOKED: Final = "appointment.booked"
APPOINTMENT_RESCHEDULED: Final = "appointment.rescheduled"
APPOINTMENT_CANCELLED: Final = "appointment.cancelled"
APPOINTMENT_MOVE_REQUESTED: Final = "appointment.move-requested"
APPOINTMENT_REMINDED: Final = "appointment.reminded"
APPOINTMENT_CALENDAR_DOWNLOADED: Final = "appointment.calendar-downloaded"
CALENDAR_VIEWED: Final = "calendar.viewed"
# Staff notes and the customer card.
NOTE_ADDED: Final = "note.added"
NOTE_EDITED: Final = "note.edited"
CUSTOMER_VIEWED: Final = "customer.viewed"
# Contacting participants from the case page (panel_core/notifications/contact.py).
INVITATION_RESENT: Final = "invitation.resent"
LOGIN_UNLOCKED: Final = "login.unlocked"
STAFF_MESSAGE_SENT: Final = "staff-message.sent"
DOCUMENT_SENT_SECURELY: Final = "document.sent-securely"
# Assisted mode (panel_core/tasks/assisted.py): the code sent to the participant's phone, the
# code they read out accepted or refused (with why), the form opened for them. Their task's
# completion is TASK_COMPLETED by the member of staff, with ``assisted`` and the participant.
ASSISTED_CODE_SENT: Final = "assisted.code-sent"
ASSISTED_PRESENCE_CONFIRMED: Final = "assisted.presence-confirmed"
ASSISTED_CODE_REFUSED: Final = "assisted.code-refused"
ASSISTED_FORM_OPENED: Final = "assisted.form-opened"
# The chat (panel_core/conversations): every message with its author and the SHA-256 of its
# text, a question the FAQ answered, what staff did with a conversation, the away SMS.
CONVERSATION_STARTED: Final = "conversation.started"
CONVERSATION_MESSAGE: Final = "conversation.message"
CONVERSATION_FAQ_RESOLVED: Final = "conversation.faq-resolved"
CONVERSATION_TAKEN: Final = "conversation.taken"
CONVERSATION_HANDED_OVER: Final = "conversation.handed-over"
CONVERSATION_CLOSED: Final = "conversation.closed"
CONVERSATION_SMS_SENT: Final = "conversation.sms-sent"
CANNED_ANSWER_SAVED: Final = "canned-answer.saved"
CANNED_ANSWER_DELETED: Final = "canned-answer.deleted"
CASE_EXPORTED: Final = "case.exported"


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
