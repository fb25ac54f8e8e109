"""Canned answers, kept by team managers: the list by case type and language, add, change,
delete. Everyone else is refused before a body is read; panel_core/conversations/canned.py
checks the texts and audits each change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases.case_types import deployed as descriptors
from panel_core.conversations import canned
from panel_core.conversations.canned import CannedAnswerError
from panel_core.db.models import CannedAnswer
from panel_core.i18n import LOCALES, N_, gettext, pick
from panel_core.identity.actors import StaffActor
from panel_web.request import client_of
from staff.dependencies import StaffController, StaffServices, require_staff, staff_of

NOT_FOUND = "Not found"
NOTICES = {
    "added": N_("The answer is added."),
    "saved": N_("The answer is changed."),
    "deleted": N_("The answer is deleted."),
}
BASE = "/conversations/canned-answers"


def require_manager(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not staff_of(connection).manager:
        raise PermissionDeniedException(gettext(canned.MANAGERS_ONLY))


@dataclass(slots=True)
class AnswerForm:
    case_type: str = ""
    locale: str = ""
    title: str = ""
    text: str = ""


def _now(services: StaffServices) -> datetime:
    return datetime.fromtimestamp(services.clock.now(), UTC)


async def _form(request: Request[Any, Any, Any]) -> AnswerForm:
    form = await request.form()
    return AnswerForm(
        **{key: str(form.get(key, "")) for key in ("case_type", "locale", "title", "text")}
    )


class CannedAnswersController(StaffController):
    path = BASE
    include_in_schema = False
    guards = [require_staff, require_manager]  # noqa: RUF012 - Litestar reads class attributes

    @get("/")
    async def answers(
        self,
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        notice: FromQuery[str] = "",
    ) -> Template:
        return await self._list(db, staff, AnswerForm(), None, notice)

    @post("/")
    async def add(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
    ) -> Template | Redirect:
        typed = await _form(request)
        try:
            await self._save(request, db, services, staff, typed, None)
        except CannedAnswerError as refused:
            return await self._list(db, staff, typed, refused, "")
        return Redirect(f"{BASE}?notice=added", status_code=303)

    @get("/{answer_id:uuid}")
    async def edit_form(
        self,
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        answer_id: FromPath[uuid.UUID],
    ) -> Template:
        answer = await db.get(CannedAnswer, answer_id)
        if answer is None:
            raise NotFoundException(NOT_FOUND)
        typed = AnswerForm(answer.case_type, answer.locale, answer.title, answer.text)
        return await self._edit(db, staff, answer, typed, None)

    @post("/{answer_id:uuid}")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        answer_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        answer = await db.get(CannedAnswer, answer_id)
        if answer is None:
            raise NotFoundException(NOT_FOUND)
        typed = await _form(request)
        try:
            saved = await self._save(request, db, services, staff, typed, answer_id)
        except CannedAnswerError as refused:
            # Rolled back: the answer is read again for the page.
            answer = await db.get(CannedAnswer, answer_id)
            if answer is None:
                raise NotFoundException(NOT_FOUND) from refused
            return await self._edit(db, staff, answer, typed, refused)
        if saved is None:
            raise NotFoundException(NOT_FOUND)
        return Redirect(f"{BASE}?notice=saved", status_code=303)

    @post("/{answer_id:uuid}/delete")
    async def delete(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        staff: NamedDependency[StaffActor],
        answer_id: FromPath[uuid.UUID],
    ) -> Redirect:
        if not await canned.delete(db, staff, answer_id, client=client_of(request)):
            raise NotFoundException(NOT_FOUND)
        await db.commit()
        return Redirect(f"{BASE}?notice=deleted", status_code=303)

    async def _save(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        typed: AnswerForm,
        answer_id: uuid.UUID | None,
    ) -> CannedAnswer | None:
        try:
            saved = await canned.save(
                db,
                staff,
                case_type=typed.case_type,
                locale=typed.locale,
                title=typed.title,
                text=typed.text,
                known_case_types=set(await descriptors(db)),
                now=_now(services),
                answer_id=answer_id,
                client=client_of(request),
            )
        except CannedAnswerError:
            await db.rollback()
            raise
        await db.commit()
        return saved

    async def _choices(self, db: AsyncSession) -> dict[str, Any]:
        kinds = await descriptors(db)
        return {
            "case_types": [(key, pick(d.name)) for key, d in kinds.items()],
            "type_name": lambda key: pick(kinds[key].name) if key in kinds else key,
            "locales": list(LOCALES),
        }

    async def _list(
        self,
        db: AsyncSession,
        staff: StaffActor,
        typed: AnswerForm,
        refused: CannedAnswerError | None,
        notice: str,
    ) -> Template:
        groups: dict[tuple[str, str], list[CannedAnswer]] = {}
        for answer in await canned.all_answers(db):
            groups.setdefault((answer.case_type, answer.locale), []).append(answer)
        message = NOTICES.get(notice)
        return Template(
            "staff/canned_answers.html.j2",
            context={
                "staff": staff,
                "groups": list(groups.items()),
                "typed": typed,
                "action": BASE,
                "error": _error_text(refused),
                "error_field": refused.field if refused else "",
                "message": gettext(message) if message else "",
                "max_title": canned.MAX_TITLE_CHARS,
                "max_text": canned.MAX_TEXT_CHARS,
                **await self._choices(db),
            },
            status_code=400 if refused else 200,
        )

    async def _edit(
        self,
        db: AsyncSession,
        staff: StaffActor,
        answer: CannedAnswer,
        typed: AnswerForm,
        refused: CannedAnswerError | None,
    ) -> Template:
        return Template(
            "staff/canned_answer.html.j2",
            context={
                "staff": staff,
                "answer": answer,
                "typed": typed,
                "action": f"{BASE}/{answer.id}",
                "error": _error_text(refused),
                "error_field": refused.field if refused else "",
                "max_title": canned.MAX_TITLE_CHARS,
                "max_text": canned.MAX_TEXT_CHARS,
                **await self._choices(db),
            },
            status_code=400 if refused else 200,
        )


def _error_text(refused: CannedAnswerError | None) -> str:
    return gettext(refused.message, **refused.values) if refused else ""
