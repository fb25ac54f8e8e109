"""The parts of contacting participants that need no engine: e-mail addresses, who may do
what, the case types' staff messages, the encrypted PDFs, and how the relay's answers are
judged (against a real SMTP server, aiosmtpd, on a loopback port)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pikepdf
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from PIL import Image

from devtools.ports import free_port
from panel_core.cases.case_types import check
from panel_core.cases.service import (
    CaseValidationError,
    ParticipantRegistration,
    check_participants,
    request_hash,
)
from panel_core.cli import parse_participants
from panel_core.db.models import EmailMessage
from panel_core.documents.secure_delivery import (
    NotSendable,
    as_pdf,
    new_password,
    pdf_name,
    protected_pdf,
)
from panel_core.identity.actors import StaffActor
from panel_core.identity.email_address import EmailAddressError, mask_email, normalize_email
from panel_core.identity.pesel import make_pesel
from panel_core.notifications.contact import (
    FREE_TEXT_MAX,
    ContactAction,
    ContactPolicy,
    ContactRefused,
    check_free_text,
    notification_email,
)
from panel_core.notifications.email_dispatcher import SmtpSender, mime_message
from panel_core.notifications.sms_providers import SendOutcome
from panel_core.settings import Settings
from tests.helpers import PDF_BYTES
from tests.test_case_type_rules import MODEL, TEXT, descriptor_of, joint_account

# -- addresses ----------------------------------------------------------------------------------


def test_email_addresses_are_checked_and_masked() -> None:
    assert normalize_email("  Jan.Kowalski+kredyt@Example.PL ") == "Jan.Kowalski+kredyt@example.pl"
    for wrong in (
        "jan",
        "jan@",
        "@example.pl",
        "jan kowalski@example.pl",
        "jan@example",
        "jan@@example.pl",
        "jan@example.pl\r\nBcc: all@example.pl",
        "jan..kowalski@example.pl",
        "a" * 65 + "@example.pl",
        "jan@" + "a" * 250 + ".pl",
    ):
        with pytest.raises(EmailAddressError):
            normalize_email(wrong)
    assert mask_email("jan.kowalski@example.pl") == "j•••@example.pl"
    assert mask_email(None) == ""


def test_registration_checks_the_address_and_keeps_old_fingerprints() -> None:
    pesel = make_pesel(date(1980, 5, 17), 4321)
    with_address = ParticipantRegistration("guardian", pesel, "+48600700800", "pl", "a@b.pl")
    checked = check_participants([with_address], 4, hash_key="k")
    assert checked[0].email == "a@b.pl"
    with pytest.raises(CaseValidationError, match="Participant 1: This is not a valid e-mail"):
        check_participants(
            [ParticipantRegistration("guardian", pesel, "+48600700800", "pl", "a@b")],
            4,
            hash_key="k",
        )
    without = ParticipantRegistration("guardian", pesel, "+48600700800", "pl")
    assert check_participants([without], 4, hash_key="k")[0].email is None
    # A request without addresses keeps the fingerprint it had before they existed, so an
    # idempotent retry across the upgrade gives the same case.
    before = json.dumps(
        ["minor-account", "branch", [["guardian", pesel, "+48600700800", "pl"]]],
        separators=(",", ":"),
    )
    expected = hmac.new(b"k", f"channel-request|{before}".encode(), hashlib.sha256).hexdigest()
    assert request_hash("k", "minor-account", "branch", [without]) == expected
    assert request_hash("k", "minor-account", "branch", [with_address]) != expected


def test_start_case_takes_an_email_address_and_makes_none_up() -> None:
    given, left_out = parse_participants(
        ["role=guardian,phone=+48600700800,email=anna@example.pl", "role=minor"]
    )
    assert given.email == "anna@example.pl"
    assert left_out.email == ""


# -- who may do what ------------------------------------------------------------------------


def staff(*roles: str) -> StaffActor:
    return StaffActor(
        subject=str(uuid.uuid4()),
        username="someone",
        name="Someone",
        groups=frozenset(),
        roles=frozenset({"staff", *roles}),
        manager="team-manager" in roles,
    )


@pytest.mark.parametrize(
    ("role", "contact", "free_text", "documents"),
    [
        ("call-centre-agent", True, True, False),
        ("branch-adviser", True, False, True),
        ("team-manager", True, True, True),
        ("credit-analyst", False, False, False),
        ("operator", False, False, False),
    ],
)
def test_each_role_may_do_what_the_policy_grants(
    role: str, contact: bool, free_text: bool, documents: bool
) -> None:
    policy = ContactPolicy.from_settings(Settings(demo_mode=True))
    actor = staff(role)
    assert policy.allows(actor, ContactAction.CONTACT) is contact
    assert policy.allows(actor, ContactAction.FREE_TEXT) is free_text
    assert policy.allows(actor, ContactAction.DOCUMENTS) is documents


def test_a_bank_names_its_own_roles() -> None:
    policy = ContactPolicy.from_settings(
        Settings(demo_mode=True, staff_free_text_roles=" branch-adviser , ")
    )
    assert policy.allows(staff("branch-adviser"), ContactAction.FREE_TEXT)
    assert not policy.allows(staff("call-centre-agent"), ContactAction.FREE_TEXT)


def test_a_text_of_ones_own_is_trimmed_and_bounded() -> None:
    assert check_free_text("  Prosimy o kontakt.\r\nDziękujemy.  \r\n") == (
        "Prosimy o kontakt.\nDziękujemy."
    )
    for wrong, message in (
        ("  \n ", "Write the message."),
        ("x" * (FREE_TEXT_MAX + 1), "A message has at most %(max)s characters."),
        ("bell\x07", "A message cannot hold control characters."),
    ):
        with pytest.raises(ContactRefused) as refused:
            check_free_text(wrong)
        assert refused.value.message == message and refused.value.field == "text"


# -- the case types' messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ({"made-up": {}}, "staffMessages.made-up: no text, and the panel has no message"),
        ({"visit": {"label": TEXT}}, "staffMessages.visit: a label without a text"),
        (
            {"visit": {"label": TEXT, "text": {"pl": "{pesel}", "en": "{case_number}"}}},
            "staffMessages.visit.text.pl: unknown placeholder {pesel}",
        ),
        (
            {"visit": {"label": {"pl": "Wizyta"}, "text": TEXT}},
            "staffMessages.visit.label has no text in en",
        ),
        ({"visit": {"text": TEXT}}, "staffMessages.visit.label has no text in pl, en"),
        ({"own": {"label": TEXT, "text": TEXT}}, "staffMessages.own: an id is 1 to 24"),
        ({"Visit Us": {"label": TEXT, "text": TEXT}}, "staffMessages.Visit Us: an id is"),
    ],
)
def test_deploy_names_what_a_staff_message_lacks(messages: dict[str, Any], problem: str) -> None:
    problems = check(descriptor_of(joint_account(staffMessages=messages)), MODEL)
    assert any(problem in found for found in problems), problems


def test_the_panels_own_and_a_case_types_own_messages_pass() -> None:
    messages = {
        "reminder": {},
        "visit": {"label": TEXT, "text": {"pl": "Sprawa {case_number}: {link}", "en": "x"}},
    }
    assert check(descriptor_of(joint_account(staffMessages=messages)), MODEL) == []


def test_an_email_speaks_the_participants_language() -> None:
    subject, body = notification_email("Text of the message.", "KR-2026-1", "en")
    assert subject == "Your case KR-2026-1"
    assert body.startswith("Hello,\n\nText of the message.\n\n") and "KR-2026-1" in body


# -- documents as encrypted PDFs ----------------------------------------------------------------


def picture(mode: str, kind: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (300, 200), "navy" if mode != "L" else 90).save(out, format=kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (PDF_BYTES, "application/pdf"),
        (picture("RGB", "JPEG"), "image/jpeg"),
        (picture("RGBA", "PNG"), "image/png"),
        (picture("P", "PNG"), "image/png"),
        (picture("L", "PNG"), "image/png"),
    ],
)
def test_a_document_becomes_a_pdf_that_opens_only_with_its_password(
    content: bytes, media_type: str
) -> None:
    password = new_password()
    protected = protected_pdf(content, media_type, password)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(protected))
    with pikepdf.open(io.BytesIO(protected), password=password) as pdf:
        assert len(pdf.pages) == 1
        assert (pdf.encryption.R, pdf.encryption.bits) == (6, 256)
        assert pdf.encryption.file_method.name == "aesv3"


def test_text_is_refused_with_a_reason_and_passwords_differ() -> None:
    with pytest.raises(NotSendable, match="Only PDF documents and JPG or PNG pictures"):
        as_pdf(b"signed text", "text/plain")
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50 and all(len(p) == 12 for p in passwords)
    assert pdf_name('scan "1"/2.png') == "scan 12.pdf"
    assert pdf_name(".png") == "document.pdf"


# -- the relay's answers -----------------------------------------------------------------------


class Judging:
    """A relay that refuses some recipients for good (550) and others for now (451)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 No such mailbox"
        if address.startswith("busy@"):
            return "451 4.2.0 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(content if isinstance(content, bytes) else content.encode())
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Judging, int]]:
    handler = Judging()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def row(to: str, **fields: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "to_address": to,
        "locale": "pl",
        "subject": "Twoja sprawa KR-2026-1",
        "body": "Dzień dobry,\n\ntreść",
        "message_id": f"<{uuid.uuid4().hex}@bank.example>",
    }
    return EmailMessage(**{**values, **fields})


async def test_the_relays_answers_decide_between_sent_retry_and_given_up(
    relay: tuple[Judging, int],
) -> None:
    handler, port = relay
    sender = SmtpSender(
        host="127.0.0.1", port=port, security="none", username="", password="", timeout_seconds=5
    )
    mail_from = "Bank <no-reply@bank.example>"
    sent = await sender.send(
        mime_message(
            row(
                "jan@example.pl",
                attachment=PDF_BYTES,
                attachment_name="umowa ż.pdf",
                attachment_type="application/pdf",
            ),
            mail_from,
        )
    )
    assert sent.outcome is SendOutcome.SENT
    assert len(handler.received) == 1 and b"umowa" in handler.received[0]
    assert (await sender.send(mime_message(row("gone@example.pl"), mail_from))).outcome is (
        SendOutcome.REJECTED
    )
    assert (await sender.send(mime_message(row("busy@example.pl"), mail_from))).outcome is (
        SendOutcome.RETRY
    )
    # STARTTLS is required by default: a relay that does not offer it is never sent plain text.
    strict = SmtpSender(
        host="127.0.0.1",
        port=port,
        security="starttls",
        username="",
        password="",
        timeout_seconds=5,
    )
    assert (await strict.send(mime_message(row("jan@example.pl"), mail_from))).outcome is (
        SendOutcome.RETRY
    )
    assert len(handler.received) == 1


def test_a_header_cannot_be_smuggled_in() -> None:
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        mime_message(row("jan@example.pl", subject="Hi\r\nBcc: all@example.pl"), "Bank <b@b.pl>")
