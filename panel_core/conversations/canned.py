"""Canned answers: ready texts staff insert into a conversation, per case type and language.
Team managers keep them; each change is audited with the SHA-256 of the text."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.db.models import CannedAnswer
from panel_core.i18n import LOCALES, N_
from panel_core.identity.actors import Client, StaffActor

MAX_TITLE_CHARS = 120
MAX_TEXT_CHARS = 2000

TITLE_MISSING = N_("Give the answer a short title.")
TITLE_TOO_LONG = N_("A title can be at most %(limit)s characters long.")
TEXT_MISSING = N_("Write the answer's text.")
TEXT_TOO_LONG = N_("An answer can be at most %(limit)s characters long.")
UNKNOWN_LANGUAGE = N_("Choose the answer's language.")
UNKNOWN_CASE_TYPE = N_("Choose the case type the answer is for.")
MANAGERS_ONLY = N_("Only team managers may change the canned answers.")


class CannedAnswerError(ValueError):
    def __init__(self, field: str, message: str, **values: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.values = values


def _check(case_type: str, locale: str, title: str, text: str, case_types: set[str]) -> None:
    if case_type not in case_types:
        raise CannedAnswerError("case_type", UNKNOWN_CASE_TYPE)
    if locale not in LOCALES:
        raise CannedAnswerError("locale", UNKNOWN_LANGUAGE)
    if not title.strip():
        raise CannedAnswerError("title", TITLE_MISSING)
    if len(title) > MAX_TITLE_CHARS:
        raise CannedAnswerError("title", TITLE_TOO_LONG, limit=MAX_TITLE_CHARS)
    if not text.strip():
        raise CannedAnswerError("text", TEXT_MISSING)
    if len(text) > MAX_TEXT_CHARS:
        raise CannedAnswerError("text", TEXT_TOO_LONG, limit=MAX_TEXT_CHARS)


async def answers_for(session: AsyncSession, case_type: str, locale: str) -> list[CannedAnswer]:
    return list(
        await session.scalars(
            select(CannedAnswer)
            .where(CannedAnswer.case_type == case_type, CannedAnswer.locale == locale)
            .order_by(CannedAnswer.title, CannedAnswer.id)
        )
    )


async def all_answers(session: AsyncSession) -> list[CannedAnswer]:
    return list(
        await session.scalars(
            select(CannedAnswer).order_by(
                CannedAnswer.case_type, CannedAnswer.locale, CannedAnswer.title
            )
        )
    )


async def save(
    session: AsyncSession,
    staff: StaffActor,
    *,
    case_type: str,
    locale: str,
    title: str,
    text: str,
    known_case_types: set[str],
    now: datetime,
    answer_id: uuid.UUID | None = None,
    client: Client | None = None,
) -> CannedAnswer | None:
    """A new answer, or a change to one (None: no such answer)."""
    if not staff.manager:
        raise PermissionError(MANAGERS_ONLY)
    title, text = title.strip(), text.replace("\r\n", "\n").strip()
    _check(case_type, locale, title, text, known_case_types)
    if answer_id is None:
        answer = CannedAnswer(id=uuid.uuid4())
        session.add(answer)
    else:
        found = await session.get(CannedAnswer, answer_id, with_for_update=True)
        if found is None:
            return None
        answer = found
    answer.case_type, answer.locale, answer.title, answer.text = case_type, locale, title, text
    answer.updated_by, answer.updated_at = staff.username, now
    audit.record(
        session,
        audit.CANNED_ANSWER_SAVED,
        actor=staff,
        client=client,
        answer=str(answer.id),
        case_type=case_type,
        locale=locale,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    return answer


async def delete(
    session: AsyncSession,
    staff: StaffActor,
    answer_id: uuid.UUID,
    *,
    client: Client | None = None,
) -> bool:
    if not staff.manager:
        raise PermissionError(MANAGERS_ONLY)
    answer = await session.get(CannedAnswer, answer_id)
    if answer is None:
        return False
    await session.delete(answer)
    audit.record(
        session,
        audit.CANNED_ANSWER_DELETED,
        actor=staff,
        client=client,
        answer=str(answer_id),
        case_type=answer.case_type,
    )
    return True
