"""A case as one JSON document, for the bank's records or a participant's request for their
data: the case, its participants, tasks, documents (their names and SHA-256, not the bytes),
the conversations with the bank, the staff notes and the audit log. What the retention job
purged is not in it any more; the export says when that happened."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases.view import load_case
from panel_core.db.models import (
    AuditEvent,
    Case,
    Conversation,
    ConversationMessage,
    Document,
    PanelTask,
    StaffNote,
)

EXPORT_FORMAT = "customer-panel.case/1"


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def case_export(session: AsyncSession, case_id: uuid.UUID) -> dict[str, Any] | None:
    case: Case | None = await load_case(session, case_id)
    if case is None:
        return None
    tasks = await session.scalars(
        select(PanelTask).where(PanelTask.case_id == case.id).order_by(PanelTask.created_at)
    )
    documents = await session.scalars(
        select(Document).where(Document.case_id == case.id).order_by(Document.uploaded_at)
    )
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.case_id == case.id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    messages: dict[uuid.UUID, list[ConversationMessage]] = {c.id: [] for c in conversations}
    for message in await session.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.case_id == case.id)
        .order_by(ConversationMessage.created_at, ConversationMessage.id)
    ):
        messages.setdefault(message.conversation_id, []).append(message)
    notes = await session.scalars(
        select(StaffNote).where(StaffNote.case_id == case.id).order_by(StaffNote.created_at)
    )
    events = await session.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
    )
    return {
        "format": EXPORT_FORMAT,
        "case": {
            "id": str(case.id),
            "caseNumber": case.case_number,
            "caseType": case.case_type,
            "channel": case.channel,
            "status": case.status,
            "statusReason": case.status_reason,
            "openedAt": _when(case.created_at),
            "closedAt": _when(case.closed_at),
            "accessUntil": _when(case.access_until),
            "purgeAfter": _when(case.purge_after),
            "purgedAt": _when(case.purged_at),
        },
        "participants": [
            {
                "id": str(p.id),
                "role": p.role,
                "locale": p.locale,
                "phone": p.phone_e164,
                "email": p.email,
                "invitedAt": _when(p.invited_at),
            }
            for p in sorted(case.participants, key=lambda p: (p.role, p.ordinal))
        ],
        "tasks": [
            {
                "id": str(t.id),
                "element": t.element_id,
                "name": t.name,
                "participant": str(t.participant_id) if t.participant_id else None,
                "assignee": t.assignee,
                "state": t.state.value,
                "createdAt": _when(t.created_at),
                "closedAt": _when(t.closed_at),
            }
            for t in tasks
        ],
        "documents": [
            {
                "id": str(d.id),
                "participant": str(d.participant_id),
                "field": d.field_key,
                "filename": d.filename,
                "mediaType": d.media_type,
                "sizeBytes": d.size_bytes,
                "sha256": d.sha256,
                "state": d.state.value,
                "uploadedAt": _when(d.uploaded_at),
            }
            for d in documents
        ],
        "conversations": [
            {
                "id": str(c.id),
                "participant": str(c.participant_id),
                "task": str(c.task_id) if c.task_id else None,
                "team": c.team,
                "assignee": c.assignee_username,
                "state": c.state.value,
                "resolution": c.resolution.value if c.resolution else None,
                "faqEntry": c.faq_entry,
                "startedAt": _when(c.created_at),
                "closedAt": _when(c.closed_at),
                "messages": [
                    {
                        "author": m.author.value,
                        "staff": m.staff_username,
                        "staffName": m.staff_name,
                        "text": m.body,
                        "sentAt": _when(m.created_at),
                    }
                    for m in messages.get(c.id, [])
                ],
            }
            for c in conversations
        ],
        "notes": [
            {
                "author": n.author_username,
                "text": n.text,
                "createdAt": _when(n.created_at),
                "editedAt": _when(n.edited_at),
            }
            for n in notes
        ],
        "audit": [
            {
                "event": e.event,
                "actor": e.actor_kind,
                "staff": e.staff_name,
                "participant": str(e.participant_id) if e.participant_id else None,
                "at": _when(e.occurred_at),
                "details": e.details,
            }
            for e in events
        ],
    }
