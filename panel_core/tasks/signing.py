"""Signing a document with a one-time SMS code bound to the document's SHA-256.

The participant reads the document, asks for a code, and the SMS names the start of the
document's fingerprint. The code's HMAC binds it to the participant, the task and that exact
fingerprint: if the document shown changes in any byte, the code no longer opens anything.

The document is a PDF (:mod:`panel_core.tasks.document_pdf`) of a page built from the
participant's own submissions (:mod:`panel_core.tasks.signed_document`); the task page shows
the same page as HTML. The PDF is built again for the code and for the signature and is the
same bytes each time, so the SHA-256 the SMS names is the one checked and the bytes kept.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from panel_core import constants as c
from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.branding import bank_sms
from panel_core.cases.case_types import Descriptor
from panel_core.clock import Clock
from panel_core.db.models import (
    ACTIVE_SUBMISSION_STATES,
    Case,
    ConsentRecord,
    Document,
    PanelTask,
    Participant,
    SignatureRecord,
    TaskState,
    TaskSubmission,
)
from panel_core.forms import input_components
from panel_core.i18n import gettext as _
from panel_core.i18n import pick
from panel_core.identity.attempts import AttemptStore, Verdict
from panel_core.identity.codes import code_mac, generate_code
from panel_core.identity.service import participant_identity
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.settings import Settings
from panel_core.tasks.consents import consent_texts
from panel_core.tasks.document_pdf import MEDIA_TYPE, render_pdf
from panel_core.tasks.signed_document import Answered, ApplicationPage, application_page

PURPOSE_SIGNING = "signing"


@dataclass(frozen=True, slots=True)
class SignableDocument:
    """The application to sign: the page the participant reads and the PDF of it, the bytes
    the code is bound to and the signature keeps."""

    page: ApplicationPage
    content: bytes

    @property
    def title(self) -> str:
        return self.page.title

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def filename(self) -> str:
        # A case number's separators must not read as folders where the file is saved.
        return f"{self.title.replace('/', '-')}.pdf"

    media_type = MEDIA_TYPE


def signature_components(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checkboxes the model marks as a signature (custom property ``signature``)."""
    return [
        component
        for component in input_components(schema)
        if component.get("type") == "checkbox"
        and str(component.get("properties", {}).get(c.FORM_PROPERTY_SIGNATURE, "")).strip()
    ]


async def application_document(
    session: AsyncSession, descriptor: Descriptor, case: Case, participant: Participant
) -> SignableDocument:
    """The application as this participant signs it: their own answers, consents, files.

    Built only from what they submitted, so nobody signs, or sees, another person's data.
    The PDF is the same bytes on every request until an answer changes
    (:mod:`panel_core.tasks.document_pdf`).
    """
    rows = await session.execute(
        select(PanelTask, TaskSubmission)
        .join(TaskSubmission, TaskSubmission.panel_task_id == PanelTask.id)
        .where(
            PanelTask.case_id == case.id,
            PanelTask.participant_id == participant.id,
            PanelTask.state != TaskState.WITHDRAWN,
            # The answers that stand: a refused submission the participant is fixing is not.
            TaskSubmission.state.in_(ACTIVE_SUBMISSION_STATES),
        )
        .order_by(PanelTask.created_at, PanelTask.element_id)
    )
    documents = {
        str(d.id): d
        for d in await session.scalars(
            select(Document).where(Document.participant_id == participant.id)
        )
    }
    consents = (
        await session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.participant_id == participant.id)
            .order_by(ConsentRecord.given_at, ConsentRecord.consent_key)
        )
    ).all()
    everyone = await session.scalars(select(Participant).where(Participant.case_id == case.id))
    role = descriptor.role_names(everyone).get(participant.id, participant.role)
    page = application_page(
        title=f"{pick(descriptor.name)} {case.case_number}",
        case_number=case.case_number,
        signer=role,
        answered=[
            Answered(
                task_id=task.id,
                title=descriptor.task_name(task.element_id, task.name),
                schema=task.form_schema or {},
                answers=submission.answers,
                sent_at=submission.created_at,
                skip=frozenset(_consent_keys(task)),
            )
            for task, submission in rows
        ],
        documents=documents,
        consents=consents,
        since=case.created_at,
    )
    # Laying out the PDF takes a fifth of a second of CPU or so: off the event loop.
    content = await asyncio.to_thread(render_pdf, page)
    return SignableDocument(page=page, content=content)


def _consent_keys(task: PanelTask) -> set[str]:
    return set(consent_texts(task.form_schema or {}))


class SigningError(ValueError):
    """The code was not accepted; the message is for the participant."""


@dataclass(frozen=True, slots=True)
class SigningOutcome:
    signed: bool
    message: str = ""


class CodeRequest(enum.Enum):
    """What became of a request for a signing code; the values name it in a page's URL."""

    SENT = "sent"
    # Too many codes asked for in the window (or no phone number to send one to).
    LIMITED = "limited"
    # The participant's access is locked after too many wrong codes: no code is sent.
    LOCKED = "locked"
    # Locked until a member of staff unlocks it.
    BLOCKED = "blocked"


class SigningCodes:
    """Codes for signing, kept like login codes: only an HMAC, checked and consumed at once."""

    def __init__(self, settings: Settings, store: AttemptStore, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    @staticmethod
    def key(task_id: uuid.UUID) -> str:
        return f"panel:auth:signing:{task_id}"

    def _mac(self, participant_id: uuid.UUID, task_id: uuid.UUID, sha256: str, code: str) -> str:
        return code_mac(
            self._settings.hash_key,
            purpose=PURPOSE_SIGNING,
            binding=f"{task_id}|{sha256}",
            participant_id=str(participant_id),
            code=code.strip(),
        )

    async def send(
        self,
        session: AsyncSession,
        *,
        case: Case,
        participant: Participant,
        task: PanelTask,
        document: SignableDocument,
    ) -> CodeRequest:
        """Queue a fresh code by SMS, unless the participant is locked or asked too often."""
        s = self._settings
        identity = participant_identity(s.hash_key, participant.id)
        # A code the lock would refuse anyway is not sent; nor does asking use up the budget.
        lock = await self._store.lock_state(
            identity,
            now=self._clock.now(),
            max_consecutive_failures=s.login_max_consecutive_failures,
        )
        if lock.until_unlocked:
            return CodeRequest.BLOCKED
        if lock.locked:
            return CodeRequest.LOCKED
        allowed = await self._store.hit(
            f"send:signing:{identity}",
            limit=s.otp_resend_limit + 1,
            window_seconds=s.otp_resend_window_seconds,
        )
        if not allowed or not participant.phone_e164:
            return CodeRequest.LIMITED
        code = generate_code(s.otp_length)
        await self._store.store_bound_code(
            self.key(task.id),
            identity,
            str(participant.id),
            mac=self._mac(participant.id, task.id, document.sha256, code),
            expires_at=self._clock.now() + s.otp_ttl_seconds,
            ttl_seconds=s.otp_ttl_seconds + 60,
        )
        await enqueue_sms(
            session,
            idempotency_key=f"{c.SMS_SIGNING_CODE}:{task.id}:{secrets.token_hex(4)}",
            purpose=c.SMS_SIGNING_CODE,
            phone_e164=participant.phone_e164,
            locale=participant.locale,
            context={
                "code": code,
                "minutes": s.otp_ttl_seconds // 60,
                "case_number": case.case_number,
                "document": document.title,
                "short_hash": document.sha256[:8],
            },
            participant_id=participant.id,
            case_id=case.id,
            bank_texts=bank_sms(s.branding_file),
        )
        return CodeRequest.SENT

    async def verify(
        self, participant_id: uuid.UUID, task_id: uuid.UUID, sha256: str, code: str
    ) -> SigningOutcome:
        s = self._settings
        if not code.strip().isdigit():
            return SigningOutcome(False, _("Enter the code from the text message."))
        result = await self._store.verify(
            self.key(task_id),
            participant_identity(s.hash_key, participant_id),
            candidate_mac=self._mac(participant_id, task_id, sha256, code),
            now=self._clock.now(),
            max_failures_per_code=s.otp_max_failures_per_code,
            max_identity_failures=s.login_max_failures,
            failure_window_seconds=s.login_failure_window_seconds,
            lock_seconds=s.login_lock_seconds,
            max_consecutive_failures=s.login_max_consecutive_failures,
        )
        if result.verdict == Verdict.OK:
            return SigningOutcome(True)
        if result.verdict == Verdict.USED:
            # Not a wrong guess: the same code sent twice (a second click, a retry).
            return SigningOutcome(
                False,
                _("This code has already been used. Ask for a new code to sign again."),
            )
        if result.verdict == Verdict.LOCKED and result.until_unlocked:
            return SigningOutcome(
                False,
                _(
                    "Access to this case is blocked after too many wrong codes. "
                    "Call the bank to have it unlocked."
                ),
            )
        if result.verdict == Verdict.LOCKED:
            return SigningOutcome(
                False,
                _(
                    "Too many wrong codes. Signing is blocked for %(minutes)s minutes.",
                    minutes=max(1, result.locked_seconds // 60),
                ),
            )
        return SigningOutcome(
            False,
            _(
                "The code is wrong or has expired, or the document has changed since the code "
                "was sent. Ask for a new code."
            ),
        )


def record_signature(
    session: AsyncSession,
    *,
    case: Case,
    participant: Participant,
    task: PanelTask,
    document: SignableDocument,
    signed_keys: Sequence[str],
) -> SignatureRecord:
    phone = participant.phone_e164 or ""
    record = SignatureRecord(
        id=uuid.uuid4(),
        case_id=case.id,
        participant_id=participant.id,
        panel_task_id=task.id,
        document_name=document.title,
        document_sha256=document.sha256,
        # The bytes the code was bound to, not a rebuild of them later.
        content=document.content,
        media_type=document.media_type,
        filename=document.filename,
        verification={
            "method": "sms-one-time-code",
            "purpose": PURPOSE_SIGNING,
            "phone": f"…{phone[-3:]}" if phone else "",
            "fields": list(signed_keys),
        },
    )
    session.add(record)
    audit.record(
        session,
        audit.DOCUMENT_SIGNED,
        case_id=case.id,
        participant_id=participant.id,
        task=task.element_id,
        sha256=document.sha256,
    )
    activity.record(
        session, activity.DOCUMENT_SIGNED, case_id=case.id, participant_id=participant.id
    )
    return record


async def participant_signatures(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> list[SignatureRecord]:
    """Everything this participant signed in this case, oldest first (each attempt)."""
    result = await session.scalars(
        select(SignatureRecord)
        .where(
            SignatureRecord.case_id == case_id,
            SignatureRecord.participant_id == participant_id,
        )
        .order_by(SignatureRecord.signed_at, SignatureRecord.id)
    )
    return list(result)


async def get_participant_signature(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID, signature_id: uuid.UUID
) -> SignatureRecord | None:
    """The signature only if this participant of this case made it."""
    return await session.scalar(
        select(SignatureRecord).where(
            SignatureRecord.id == signature_id,
            SignatureRecord.case_id == case_id,
            SignatureRecord.participant_id == participant_id,
        )
    )


async def case_signatures(session: AsyncSession, case_id: uuid.UUID) -> list[SignatureRecord]:
    """Every signature in the case whose bytes are kept, oldest first; the bytes themselves
    are not loaded (a list does not need them)."""
    result = await session.scalars(
        select(SignatureRecord)
        .where(SignatureRecord.case_id == case_id, func.length(SignatureRecord.content) > 0)
        .options(defer(SignatureRecord.content, raiseload=True))
        .order_by(SignatureRecord.signed_at, SignatureRecord.id)
    )
    return list(result)


async def get_case_signature(
    session: AsyncSession, case_id: uuid.UUID, signature_id: uuid.UUID
) -> SignatureRecord | None:
    """The signature only if it was made in this case."""
    return await session.scalar(
        select(SignatureRecord).where(
            SignatureRecord.id == signature_id, SignatureRecord.case_id == case_id
        )
    )
