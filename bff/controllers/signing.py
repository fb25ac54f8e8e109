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
from litestar.response import Redirect, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext, provide_participant
from bff.services.signing import signing_codes, signing_context
from panel_core.db.models import PanelTask, TaskState
from panel_core.i18n import N_
from panel_core.i18n import gettext as _
from panel_core.tasks.service import get_participant_task
from panel_core.tasks.signing import CodeRequest, SignableDocument, signature_components
from panel_web.downloads import exact_bytes

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


async def _document(
    db: AsyncSession, participant: ParticipantContext, task_id: uuid.UUID
) -> SignableDocument:
    await _signing_task(db, participant, task_id)
    context = await signing_context(db, participant)
    if context is None:
        raise NotFoundException(NOT_FOUND)
    return context.document


def _pdf(document: SignableDocument) -> Response[bytes]:
    return exact_bytes(
        document.content,
        media_type=document.media_type,
        filename=document.filename,
        sha256=document.sha256,
    )


class SigningPagesController(Controller):
    path = "/tasks"
    include_in_schema = False
    dependencies = {"participant": Provide(provide_participant)}  # noqa: RUF012

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

    @get("/{task_id:uuid}/signing-document")
    async def document_pdf(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        """The PDF the task page shows, to keep or read elsewhere before signing it."""
        return _pdf(await _document(db, participant, task_id))


class SigningDocumentOut(msgspec.Struct, rename="camel"):
    title: str
    # The SHA-256 of the PDF: the one the SMS names and the code is bound to.
    sha256: str
    media_type: str
    filename: str
    size_bytes: int
    # Where the PDF is, byte for byte what a code sent now would sign.
    content_url: str


class SigningApiController(Controller):
    path = "/api/participant/tasks"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes
    dependencies = {"participant": Provide(provide_participant)}  # noqa: RUF012

    @get("/{task_id:uuid}/signing-document")
    async def document(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> SigningDocumentOut:
        doc = await _document(db, participant, task_id)
        return SigningDocumentOut(
            title=doc.title,
            sha256=doc.sha256,
            media_type=doc.media_type,
            filename=doc.filename,
            size_bytes=len(doc.content),
            content_url=f"{self.path}/{task_id}/signing-document/content",
        )

    @get("/{task_id:uuid}/signing-document/content")
    async def document_content(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        """The document to sign (application/pdf); its SHA-256 is ``sha256`` above."""
        return _pdf(await _document(db, participant, task_id))

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
