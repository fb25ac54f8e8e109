"""Contacting a case's participants from the case page: the invitation again, a login lock
lifted, a message by SMS or e-mail, a document sent securely (panel_core/notifications/
contact.py decides who may, and does it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases import case_types
from panel_core.db.models import Case, Participant
from panel_core.i18n import current_locale, gettext
from panel_core.identity.actors import StaffActor
from panel_core.identity.email_address import mask_email
from panel_core.identity.service import LoginService
from panel_core.notifications.contact import (
    FREE_TEXT_MAX,
    NOT_ALLOWED,
    REFUSAL_CODES,
    Channel,
    ContactAction,
    ContactForbidden,
    ContactPolicy,
    ContactRefused,
    message_choices,
    participant_of,
    resend_invitation,
    send_document,
    send_message,
    sendable_documents,
    unlock_access,
)
from panel_core.notifications.email_dispatcher import email_configured
from panel_core.notifications.staff_templates import OWN_TEXT
from panel_web.request import client_of
from staff.controllers.cases import visible_case
from staff.dependencies import StaffController, StaffServices

NOT_FOUND = "Not found"


async def _case_and_person(
    db: AsyncSession, staff: StaffActor, case_id: uuid.UUID, participant_id: uuid.UUID
) -> tuple[Case, Participant]:
    case = await visible_case(db, staff, case_id)
    person = participant_of(case, participant_id)
    if person is None:
        raise NotFoundException(NOT_FOUND)
    return case, person


def _require(services: StaffServices, staff: StaffActor, action: ContactAction) -> None:
    if not ContactPolicy.from_settings(services.settings).allows(staff, action):
        raise PermissionDeniedException(NOT_ALLOWED)


def _back(case: Case, outcome: str) -> Redirect:
    return Redirect(f"/cases/{case.id}?contact={outcome}#contact", status_code=303)


def _login(services: StaffServices) -> LoginService:
    return LoginService(services.settings, services.sessions, services.redis, services.clock)


def _now(services: StaffServices) -> datetime:
    return datetime.fromtimestamp(services.clock.now(), UTC)


async def _label(db: AsyncSession, case: Case, person: Participant) -> str:
    descriptor = await case_types.of_case(db, case)
    return descriptor.role_names(case.participants)[person.id]


class ContactController(StaffController):
    include_in_schema = False

    @post("/cases/{case_id:uuid}/participants/{participant_id:uuid}/invitation")
    async def invite_again(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Redirect:
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        try:
            await resend_invitation(
                db,
                services.settings,
                _login(services),
                case=case,
                participant=person,
                actor=staff,
                client=client_of(request),
                now=_now(services),
            )
        except ContactForbidden as exc:
            raise PermissionDeniedException(NOT_ALLOWED) from exc
        except ContactRefused as refused:
            return _back(case, _refusal_code(refused))
        return _back(case, "invited")

    @post("/cases/{case_id:uuid}/participants/{participant_id:uuid}/unlock")
    async def unlock(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Redirect:
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        try:
            await unlock_access(
                db,
                services.settings,
                _login(services),
                case=case,
                participant=person,
                actor=staff,
                client=client_of(request),
            )
        except ContactForbidden as exc:
            raise PermissionDeniedException(NOT_ALLOWED) from exc
        return _back(case, "unlocked")

    @get("/cases/{case_id:uuid}/participants/{participant_id:uuid}/message")
    async def message_form(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Template:
        _require(services, staff, ContactAction.CONTACT)
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        return await self._message_page(db, services, staff, case, person, {}, None)

    @post("/cases/{case_id:uuid}/participants/{participant_id:uuid}/message")
    async def send(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        _require(services, staff, ContactAction.CONTACT)
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        form = await request.form()
        typed = {key: str(form.get(key, "")) for key in ("channel", "message", "text")}
        try:
            how = await send_message(
                db,
                services.settings,
                case=case,
                descriptor=await case_types.of_case(db, case),
                participant=person,
                actor=staff,
                client=client_of(request),
                channel=typed["channel"],
                message=typed["message"],
                text=typed["text"],
            )
        except ContactForbidden as exc:
            raise PermissionDeniedException(NOT_ALLOWED) from exc
        except ContactRefused as refused:
            return await self._message_page(db, services, staff, case, person, typed, refused)
        return _back(case, "email-sent" if how is Channel.EMAIL else "sms-sent")

    async def _message_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        case: Case,
        person: Participant,
        typed: dict[str, str],
        refused: ContactRefused | None,
    ) -> Template:
        settings = services.settings
        descriptor = await case_types.of_case(db, case)
        channels = []
        if person.phone_e164:
            channels.append((Channel.SMS.value, gettext("Text message (SMS)")))
        if person.email and email_configured(settings):
            channels.append((Channel.EMAIL.value, gettext("E-mail")))
        return Template(
            "staff/contact_message.html.j2",
            context={
                "staff": staff,
                "case": case,
                "person": person,
                "label": await _label(db, case, person),
                "email": mask_email(person.email),
                "email_enabled": email_configured(settings),
                "channels": channels,
                "choices": message_choices(settings, case, descriptor, current_locale()),
                "may_write": ContactPolicy.from_settings(settings).allows(
                    staff, ContactAction.FREE_TEXT
                ),
                "own_text": OWN_TEXT,
                "max_text": FREE_TEXT_MAX,
                "typed": typed,
                "error": refused.translated() if refused else "",
                "error_field": (refused.field or "channel") if refused else "",
            },
            status_code=400 if refused else 200,
        )

    @get("/cases/{case_id:uuid}/participants/{participant_id:uuid}/document")
    async def document_form(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Template:
        _require(services, staff, ContactAction.DOCUMENTS)
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        return await self._document_page(db, services, staff, case, person, "", None)

    @post("/cases/{case_id:uuid}/participants/{participant_id:uuid}/document")
    async def send_securely(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        case_id: FromPath[uuid.UUID],
        participant_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        _require(services, staff, ContactAction.DOCUMENTS)
        case, person = await _case_and_person(db, staff, case_id, participant_id)
        form = await request.form()
        chosen = str(form.get("document", ""))
        try:
            await send_document(
                db,
                services.settings,
                services.storage,
                case=case,
                participant=person,
                actor=staff,
                client=client_of(request),
                reference=chosen,
            )
        except ContactForbidden as exc:
            raise PermissionDeniedException(NOT_ALLOWED) from exc
        except ContactRefused as refused:
            return await self._document_page(db, services, staff, case, person, chosen, refused)
        return _back(case, "document-sent")

    async def _document_page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        case: Case,
        person: Participant,
        chosen: str,
        refused: ContactRefused | None,
    ) -> Template:
        settings = services.settings
        return Template(
            "staff/contact_document.html.j2",
            context={
                "staff": staff,
                "case": case,
                "person": person,
                "label": await _label(db, case, person),
                "email": mask_email(person.email),
                "email_enabled": email_configured(settings),
                "documents": await sendable_documents(db, case.id, person.id),
                "chosen": chosen,
                "error": refused.translated() if refused else "",
            },
            status_code=400 if refused else 200,
        )


def _refusal_code(refused: ContactRefused) -> str:
    return REFUSAL_CODES.get(refused.message, "refused")
