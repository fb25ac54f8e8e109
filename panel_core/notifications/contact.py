"""Staff contacting a case's participants from the case page: the invitation sent again, a
login lock lifted, a message by SMS or e-mail, a document sent securely.

Everything leaves through the outboxes (SMS and e-mail), in the transaction that records it
in the audit log with the member of staff. Who may do what is decided here, by the person's
roles (``ContactPolicy``, from the settings), so that no route can forget it:

* **contact** (resend the invitation, lift a lock, send one of the case type's messages):
  call-centre agents, branch advisers and team managers;
* **free text** (a message the member of staff writes themselves): call-centre agents and
  team managers, whose conversations with customers are recorded by the bank anyway;
* **documents** (a case document by e-mail, the password by SMS): branch advisers and team
  managers, who hand documents to customers in the bank's name.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.branding import bank_sms, load_branding
from panel_core.cases import case_types, closure
from panel_core.cases.case_types import Descriptor, StaffMessage
from panel_core.cases.view import CaseView
from panel_core.db.models import Case, Document, DocumentState, Participant, SignatureRecord
from panel_core.documents.secure_delivery import NotSendable, new_password, pdf_name, protected_pdf
from panel_core.documents.storage import DocumentStorage
from panel_core.i18n import N_, gettext, pick, use_locale
from panel_core.identity.actors import Client, StaffActor
from panel_core.identity.attempts import AttemptStore, LockState
from panel_core.identity.email_address import mask_email
from panel_core.identity.service import LoginService, participant_identity
from panel_core.notifications.email_dispatcher import email_configured
from panel_core.notifications.email_outbox import enqueue_email
from panel_core.notifications.invitations import invitation_link
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.notifications.sms_templates import render_sms
from panel_core.notifications.staff_templates import (
    DOCUMENT_PASSWORD_PURPOSE,
    FREE_TEXT_PURPOSE,
    OWN_PURPOSE,
    OWN_TEXT,
    PANEL_MESSAGES,
    panel_purpose,
)
from panel_core.settings import Settings

# At most three SMS parts of GSM-7 text (153 characters each).
FREE_TEXT_MAX = 459
SECURE_DOCUMENT_PURPOSE = "secure-document"
EMAIL_NOTIFICATION_PURPOSE = "staff-email"

NOT_ALLOWED = N_("Your role does not allow this.")
NO_PHONE = N_("This participant has no phone number on file.")
NO_EMAIL = N_("This participant has no e-mail address on file.")
NO_MAIL_RELAY = N_("The panel sends no e-mail: no mail server is set up.")
NOT_INVITED = N_(
    "This participant has not been invited yet: the process invites them when their part begins."
)
ACCESS_ENDED = N_(
    "The participants' access to this case has ended, so an invitation would open nothing."
)
UNKNOWN_MESSAGE = N_("Choose one of the messages.")
EMPTY_TEXT = N_("Write the message.")
TEXT_TOO_LONG = N_("A message has at most %(max)s characters.")
TEXT_CONTROL = N_("A message cannot hold control characters.")
UNKNOWN_CHANNEL = N_("Choose how to send the message.")
UNKNOWN_DOCUMENT = N_("Choose one of this participant's documents.")
# What the case page says after an action, by the code its address carries.
NOTICES: Mapping[str, str] = {
    "invited": N_("A new invitation is on its way by SMS; the one sent before no longer works."),
    "unlocked": N_("The participant's sign-in is unlocked."),
    "sms-sent": N_("The text message is on its way."),
    "email-sent": N_("The e-mail is on its way."),
    "document-sent": N_("The document is on its way by e-mail, and its password by SMS."),
}
REFUSAL_CODES: Mapping[str, str] = {
    NOT_INVITED: "not-invited",
    ACCESS_ENDED: "access-ended",
    NO_PHONE: "no-phone",
}
PROBLEMS: Mapping[str, str] = {code: message for message, code in REFUSAL_CODES.items()}


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class ContactAction(enum.StrEnum):
    CONTACT = "contact"
    FREE_TEXT = "free-text"
    DOCUMENTS = "documents"


class ContactForbidden(PermissionError):
    """The member of staff's roles do not allow the action (403)."""


class ContactRefused(ValueError):
    """The action cannot be done for this participant; ``message`` is a msgid, ``field`` the
    form field it is about, if any."""

    def __init__(self, message: str, field: str = "", **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def translated(self) -> str:
        return gettext(self.message, **self.params)


def _roles(text: str) -> frozenset[str]:
    return frozenset(role.strip() for role in text.split(",") if role.strip())


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    contact: frozenset[str]
    free_text: frozenset[str]
    documents: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> ContactPolicy:
        return cls(
            contact=_roles(settings.staff_contact_roles),
            free_text=_roles(settings.staff_free_text_roles),
            documents=_roles(settings.staff_document_roles),
        )

    def allows(self, actor: StaffActor, action: ContactAction) -> bool:
        roles = {
            ContactAction.CONTACT: self.contact,
            ContactAction.FREE_TEXT: self.free_text,
            ContactAction.DOCUMENTS: self.documents,
        }[action]
        return bool(actor.roles & roles)

    def require(self, actor: StaffActor, action: ContactAction) -> None:
        if not self.allows(actor, action):
            raise ContactForbidden(NOT_ALLOWED)


# -- what the case page shows --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageChoice:
    key: str
    label: str
    # The text as it goes out, in the staff's language (the participant gets theirs).
    preview: str


@dataclass(frozen=True, slots=True)
class ParticipantContact:
    participant: Participant
    label: str
    phone: str
    email: str
    invited_at: datetime | None
    lock: LockState


@dataclass(frozen=True, slots=True)
class ContactView:
    people: list[ParticipantContact]
    may_contact: bool
    may_write: bool
    may_send_documents: bool
    email_enabled: bool
    # Whether a new invitation would open the case (its participants' access has not ended).
    access_open: bool

    def person(self, participant_id: uuid.UUID) -> ParticipantContact | None:
        return next((p for p in self.people if p.participant.id == participant_id), None)

    @staticmethod
    def outcome(code: str) -> tuple[str, bool] | None:
        """(what the page says, whether it is a problem) after the action named ``code``."""
        if code in NOTICES:
            return gettext(NOTICES[code]), False
        if code in PROBLEMS:
            return gettext(PROBLEMS[code]), True
        return None


async def lock_state(
    settings: Settings, redis: Redis, participant_id: uuid.UUID, now: float
) -> LockState:
    return await AttemptStore(redis).lock_state(
        participant_identity(settings.hash_key, participant_id),
        now=now,
        max_consecutive_failures=settings.login_max_consecutive_failures,
    )


async def contact_view(
    settings: Settings, redis: Redis, actor: StaffActor, view: CaseView, now: float
) -> ContactView:
    policy = ContactPolicy.from_settings(settings)
    people = [
        ParticipantContact(
            participant=row.participant,
            label=row.label,
            phone=row.phone,
            email=mask_email(row.participant.email),
            invited_at=row.invited_at,
            lock=await lock_state(settings, redis, row.participant.id, now),
        )
        for row in view.participants
    ]
    return ContactView(
        people=people,
        may_contact=policy.allows(actor, ContactAction.CONTACT),
        may_write=policy.allows(actor, ContactAction.FREE_TEXT),
        may_send_documents=policy.allows(actor, ContactAction.DOCUMENTS),
        email_enabled=email_configured(settings),
        access_open=closure.participant_access(view.case, closure.as_datetime(now)) is not None,
    )


def login_link(base_url: str, case_number: str) -> str:
    return f"{base_url.rstrip('/')}/login?{urlencode({'case': case_number})}"


def _context(settings: Settings, case: Case) -> dict[str, Any]:
    return {
        "case_number": case.case_number,
        "link": login_link(settings.public_base_url, case.case_number),
        "helpline": load_branding(settings.branding_file).helpline,
    }


def offered_messages(descriptor: Descriptor) -> Mapping[str, StaffMessage]:
    """The messages a case type offers, in its order: its list, or the panel's own."""
    return descriptor.staff_messages or {key: StaffMessage() for key in PANEL_MESSAGES}


def _render(
    key: str, entry: StaffMessage, locale: str, context: Mapping[str, Any]
) -> tuple[str, str]:
    """(the SMS outbox's purpose, the text in ``locale``) of one offered message."""
    if entry.text:
        return OWN_PURPOSE, render_sms(OWN_PURPOSE, locale, context, own=entry.text)
    purpose = panel_purpose(key)
    return purpose, render_sms(purpose, locale, context)


def message_choices(
    settings: Settings, case: Case, descriptor: Descriptor, locale: str
) -> list[MessageChoice]:
    context = _context(settings, case)
    choices = []
    for key, entry in offered_messages(descriptor).items():
        label = pick(entry.label) if entry.text else gettext(PANEL_MESSAGES[key])
        choices.append(MessageChoice(key, label, _render(key, entry, locale, context)[1]))
    return choices


def check_free_text(text: str) -> str:
    """The text as it is sent (trimmed, line ends made \\n), or ContactRefused."""
    cleaned = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))
    if not cleaned:
        raise ContactRefused(EMPTY_TEXT, "text")
    if len(cleaned) > FREE_TEXT_MAX:
        raise ContactRefused(TEXT_TOO_LONG, "text", max=FREE_TEXT_MAX)
    if any(not ch.isprintable() and ch != "\n" for ch in cleaned):
        raise ContactRefused(TEXT_CONTROL, "text")
    return cleaned


# -- e-mail wording --------------------------------------------------------------------------


def _footer(case_number: str) -> str:
    return gettext(
        "This message is about your case %(case_number)s at the bank. Please do not reply to it.",
        case_number=case_number,
    )


def notification_email(text: str, case_number: str, locale: str) -> tuple[str, str]:
    """(subject, body) of a message sent by e-mail, in the participant's language."""
    with use_locale(locale):
        subject = gettext("Your case %(case_number)s", case_number=case_number)
        body = "\n\n".join([gettext("Hello,"), text, _footer(case_number)])
    return subject, body + "\n"


def document_email(document: str, case_number: str, locale: str) -> tuple[str, str]:
    """(subject, body) of the e-mail that carries a document, in the participant's language."""
    with use_locale(locale):
        subject = gettext("A document from your case %(case_number)s", case_number=case_number)
        body = "\n\n".join(
            [
                gettext("Hello,"),
                gettext(
                    "Attached is the document “%(document)s” from your case %(case_number)s, "
                    "as a PDF protected with a password.",
                    document=document,
                    case_number=case_number,
                ),
                gettext(
                    "The password comes in a separate text message to the phone number the "
                    "bank has for you. Keep the two apart: do not forward them together."
                ),
                _footer(case_number),
            ]
        )
    return subject, body + "\n"


# -- the actions -----------------------------------------------------------------------------


def participant_of(case: Case, participant_id: uuid.UUID) -> Participant | None:
    return next((p for p in case.participants if p.id == participant_id), None)


async def resend_invitation(
    session: AsyncSession,
    settings: Settings,
    login: LoginService,
    *,
    case: Case,
    participant: Participant,
    actor: StaffActor,
    client: Client,
    now: datetime,
) -> None:
    """A new invitation code and SMS; the one sent before stops working at once (the new code
    replaces it in Redis), its link too."""
    ContactPolicy.from_settings(settings).require(actor, ContactAction.CONTACT)
    # Held until the commit: the process's own invitation job, delivered late, waits for it
    # and then sees the participant invited.
    person = await session.get(Participant, participant.id, with_for_update=True)
    if person is None or person.invited_at is None:
        raise ContactRefused(NOT_INVITED)
    if closure.participant_access(case, now) is None:
        raise ContactRefused(ACCESS_ENDED)
    if not person.phone_e164:
        raise ContactRefused(NO_PHONE)
    code = await login.issue_invitation_code(person)
    descriptor = await case_types.of_case(session, case)
    await enqueue_sms(
        session,
        idempotency_key=f"{c.SMS_INVITATION}:{person.id}:again:{secrets.token_hex(8)}",
        purpose=c.SMS_INVITATION,
        phone_e164=person.phone_e164,
        locale=person.locale,
        context={
            "case_number": case.case_number,
            "link": invitation_link(settings.public_base_url, case.case_number, code),
            "code": code,
            "valid_days": max(1, settings.invitation_code_ttl_seconds // 86400),
        },
        participant_id=person.id,
        case_id=case.id,
        own_text=descriptor.messages.get(c.SMS_INVITATION),
        bank_texts=bank_sms(settings.branding_file),
    )
    person.invited_at = now
    audit.record(
        session,
        audit.INVITATION_RESENT,
        case_id=case.id,
        participant_id=person.id,
        actor=actor,
        client=client,
    )
    await session.commit()


async def unlock_access(
    session: AsyncSession,
    settings: Settings,
    login: LoginService,
    *,
    case: Case,
    participant: Participant,
    actor: StaffActor,
    client: Client,
) -> None:
    """Lift any lock on the participant's sign-in, the one only staff can lift too."""
    ContactPolicy.from_settings(settings).require(actor, ContactAction.CONTACT)
    await login.unlock(participant.id)
    audit.record(
        session,
        audit.LOGIN_UNLOCKED,
        case_id=case.id,
        participant_id=participant.id,
        actor=actor,
        client=client,
    )
    await session.commit()


async def send_message(
    session: AsyncSession,
    settings: Settings,
    *,
    case: Case,
    descriptor: Descriptor,
    participant: Participant,
    actor: StaffActor,
    client: Client,
    channel: str,
    message: str,
    text: str = "",
) -> Channel:
    """Queue one of the case type's messages, or the staff's own text (``message`` OWN_TEXT),
    by SMS or e-mail, in the participant's language."""
    policy = ContactPolicy.from_settings(settings)
    policy.require(actor, ContactAction.CONTACT)
    own_text = message == OWN_TEXT
    if own_text:
        policy.require(actor, ContactAction.FREE_TEXT)
    try:
        how = Channel(channel)
    except ValueError as exc:
        raise ContactRefused(UNKNOWN_CHANNEL, "channel") from exc
    offered = offered_messages(descriptor)
    if not own_text and message not in offered:
        raise ContactRefused(UNKNOWN_MESSAGE, "message")
    written = check_free_text(text) if own_text else ""
    if how is Channel.SMS and not participant.phone_e164:
        raise ContactRefused(NO_PHONE, "channel")
    if how is Channel.EMAIL:
        if not email_configured(settings):
            raise ContactRefused(NO_MAIL_RELAY, "channel")
        if not participant.email:
            raise ContactRefused(NO_EMAIL, "channel")
    context = _context(settings, case)
    if own_text:
        purpose = FREE_TEXT_PURPOSE
        body = render_sms(purpose, participant.locale, {"text": written})
    else:
        purpose, body = _render(message, offered[message], participant.locale, context)
    key = f"staff:{uuid.uuid4()}"
    if how is Channel.SMS:
        assert participant.phone_e164
        await enqueue_sms(
            session,
            idempotency_key=key,
            purpose=purpose,
            phone_e164=participant.phone_e164,
            locale=participant.locale,
            context={"text": written} if own_text else context,
            participant_id=participant.id,
            case_id=case.id,
            own_text=offered[message].text if not own_text and offered[message].text else None,
        )
    else:
        assert participant.email
        subject, email_body = notification_email(body, case.case_number, participant.locale)
        await enqueue_email(
            session,
            idempotency_key=key,
            purpose=EMAIL_NOTIFICATION_PURPOSE,
            to_address=participant.email,
            locale=participant.locale,
            subject=subject,
            body=email_body,
            mail_from=settings.mail_from,
            participant_id=participant.id,
            case_id=case.id,
        )
    details: dict[str, Any] = {"channel": how.value, "message": message}
    if own_text:
        # Own words are personal data the audit log would keep for ever: their fingerprint
        # and length prove what was sent against the provider's or relay's copy.
        details.update(
            text_sha256=hashlib.sha256(written.encode()).hexdigest(), length=len(written)
        )
    audit.record(
        session,
        audit.STAFF_MESSAGE_SENT,
        case_id=case.id,
        participant_id=participant.id,
        actor=actor,
        client=client,
        **details,
    )
    await session.commit()
    return how


@dataclass(frozen=True, slots=True)
class SendableDocument:
    # "document:<id>" or "signature:<id>", as the form names it.
    reference: str
    name: str
    media_type: str
    when: datetime


async def sendable_documents(
    session: AsyncSession, case_id: uuid.UUID, participant_id: uuid.UUID
) -> list[SendableDocument]:
    """The participant's own documents, uploaded and signed: only what concerns them goes to
    their address, never another participant's."""
    uploads = await session.scalars(
        select(Document)
        .where(
            Document.case_id == case_id,
            Document.participant_id == participant_id,
            Document.state != DocumentState.REMOVED,
        )
        .order_by(Document.uploaded_at, Document.id)
    )
    signatures = await session.scalars(
        select(SignatureRecord)
        .where(
            SignatureRecord.case_id == case_id,
            SignatureRecord.participant_id == participant_id,
            func.length(SignatureRecord.content) > 0,
        )
        .options(defer(SignatureRecord.content, raiseload=True))
        .order_by(SignatureRecord.signed_at, SignatureRecord.id)
    )
    found = [
        SendableDocument(f"document:{d.id}", d.filename, d.media_type, d.uploaded_at)
        for d in uploads
    ]
    found += [
        SendableDocument(f"signature:{s.id}", s.filename, s.media_type, s.signed_at)
        for s in signatures
    ]
    return found


async def _document_bytes(
    session: AsyncSession,
    storage: DocumentStorage,
    case: Case,
    participant: Participant,
    reference: str,
) -> tuple[str, str, bytes, dict[str, str]]:
    """(file name, type, bytes, what the audit log names it by) of one sendable document."""
    kind, _, raw_id = reference.partition(":")
    try:
        item_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise ContactRefused(UNKNOWN_DOCUMENT, "document") from exc
    if kind == "document":
        document = await session.get(Document, item_id)
        if (
            document is None
            or document.case_id != case.id
            or document.participant_id != participant.id
            or document.state == DocumentState.REMOVED
        ):
            raise ContactRefused(UNKNOWN_DOCUMENT, "document")
        content = b"".join([chunk async for chunk in storage.read(document.storage_key)])
        return document.filename, document.media_type, content, {"document": str(document.id)}
    if kind == "signature":
        signature = await session.get(SignatureRecord, item_id)
        if (
            signature is None
            or signature.case_id != case.id
            or signature.participant_id != participant.id
            or not signature.content
        ):
            raise ContactRefused(UNKNOWN_DOCUMENT, "document")
        return (
            signature.filename,
            signature.media_type,
            signature.content,
            {"signature": str(signature.id)},
        )
    raise ContactRefused(UNKNOWN_DOCUMENT, "document")


async def send_document(
    session: AsyncSession,
    settings: Settings,
    storage: DocumentStorage,
    *,
    case: Case,
    participant: Participant,
    actor: StaffActor,
    client: Client,
    reference: str,
) -> None:
    """The document by e-mail as an AES-256 encrypted PDF, its password by SMS.

    The password is drawn here and kept nowhere but in the SMS outbox row that carries it
    (cleared once sent); the e-mail outbox row holds only the encrypted PDF.
    """
    ContactPolicy.from_settings(settings).require(actor, ContactAction.DOCUMENTS)
    if not email_configured(settings):
        raise ContactRefused(NO_MAIL_RELAY)
    if not participant.email:
        raise ContactRefused(NO_EMAIL)
    if not participant.phone_e164:
        raise ContactRefused(NO_PHONE)
    filename, media_type, content, named = await _document_bytes(
        session, storage, case, participant, reference
    )
    password = new_password()
    try:
        protected = await asyncio.to_thread(protected_pdf, content, media_type, password)
    except NotSendable as exc:
        raise ContactRefused(str(exc), "document") from exc
    name = pdf_name(filename)
    subject, body = document_email(name, case.case_number, participant.locale)
    key = f"secure-document:{uuid.uuid4()}"
    email_id = await enqueue_email(
        session,
        idempotency_key=key,
        purpose=SECURE_DOCUMENT_PURPOSE,
        to_address=participant.email,
        locale=participant.locale,
        subject=subject,
        body=body,
        mail_from=settings.mail_from,
        participant_id=participant.id,
        case_id=case.id,
        attachment=protected,
        attachment_name=name,
        attachment_type="application/pdf",
    )
    await enqueue_sms(
        session,
        idempotency_key=f"{key}:password",
        purpose=DOCUMENT_PASSWORD_PURPOSE,
        phone_e164=participant.phone_e164,
        locale=participant.locale,
        context={"document": name, "case_number": case.case_number, "password": password},
        participant_id=participant.id,
        case_id=case.id,
    )
    audit.record(
        session,
        audit.DOCUMENT_SENT_SECURELY,
        case_id=case.id,
        participant_id=participant.id,
        actor=actor,
        client=client,
        email=str(email_id),
        sent_sha256=hashlib.sha256(protected).hexdigest(),
        converted=media_type != "application/pdf",
        **named,
    )
    await session.commit()
