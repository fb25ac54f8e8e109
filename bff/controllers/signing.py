"""Asking for the one-time code that signs the document shown on a task page."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext, provide_participant
from bff.services.signing import signing_codes, signing_context
from panel_core.db.models import PanelTask, TaskState
from panel_core.i18n import N_
from panel_core.i18n import gettext as _
from panel_core.tasks.service import get_participant_task
from panel_core.tasks.signing import CodeRequest, signature_components

NOT_FOUND = "Not found"
# The API's answers when no code is sent; the task page shows the same texts (task.html.j2).
REFUSALS: dict[CodeRequest, tuple[int, str]] = {
    CodeRequest.LIMITED: (
        429,
        N_("You have asked for too many codes. Please wait 15 minutes and try again."),
    ),
    CodeRequest.LOCKED: (
        423,
        N_(
            "Access to this case is locked for a while after too many wrong codes, so we cannot "
            "send a signing code. Please try again later, or call the bank if you need it "
            "unlocked sooner."
        ),
    ),
    CodeRequest.BLOCKED: (
        423,
        N_(
            "Access to this case is blocked after too many wrong codes. Call the bank to have it "
            "unlocked."
        ),
    ),
}


async def _signing_task(
    db: AsyncSession, participant: ParticipantContext, task_id: uuid.UUID
) -> PanelTask:
    task = await get_participant_task(db, participant.case_id, participant.participant_id, task_id)
    if (
        task is None
        or task.state != TaskState.OPEN
        or not signature_components(task.form_schema or {})
    ):
        raise NotFoundException(NOT_FOUND)
    return task


async def _send_code(
    state: State, db: AsyncSession, participant: ParticipantContext, task: PanelTask
) -> CodeRequest:
    context = await signing_context(db, participant)
    if context is None:
        raise NotFoundException(NOT_FOUND)
    sent = await signing_codes(state).send(
        db, case=context.case, participant=context.participant, task=task, document=context.document
    )
    await db.commit()
    return sent


class SigningPagesController(Controller):
    path = "/tasks"
    include_in_schema = False
    dependencies = {"participant": Provide(provide_participant, sync_to_thread=False)}  # noqa: RUF012

    @post("/{task_id:uuid}/signing-code")
    async def send_code(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> Redirect:
        task = await _signing_task(db, participant, task_id)
        outcome = await _send_code(request.app.state, db, participant, task)
        # A lock's message stands just above the signing section, where this anchor points.
        anchor = (
            "signing-locked" if outcome in {CodeRequest.LOCKED, CodeRequest.BLOCKED} else "signing"
        )
        return Redirect(path=f"/tasks/{task_id}?code={outcome.value}#{anchor}", status_code=303)


class SigningDocumentOut(msgspec.Struct, rename="camel"):
    title: str
    text: str
    sha256: str


class SigningApiController(Controller):
    path = "/api/participant/tasks"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes
    dependencies = {"participant": Provide(provide_participant, sync_to_thread=False)}  # noqa: RUF012

    @get("/{task_id:uuid}/signing-document")
    async def document(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> SigningDocumentOut:
        await _signing_task(db, participant, task_id)
        context = await signing_context(db, participant)
        if context is None:
            raise NotFoundException(NOT_FOUND)
        doc = context.document
        return SigningDocumentOut(title=doc.title, text=doc.text, sha256=doc.sha256)

    @post("/{task_id:uuid}/signing-code", status_code=202)
    async def send_code(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> dict[str, bool]:
        task = await _signing_task(db, participant, task_id)
        outcome = await _send_code(request.app.state, db, participant, task)
        if outcome is not CodeRequest.SENT:
            status, message = REFUSALS[outcome]
            raise ClientException(
                detail=_(message), status_code=status, extra={"reason": outcome.value}
            )
        return {"sent": True}
