"""Contacting participants from the staff case page, against the real Keycloak, engine,
PostgreSQL, Redis, workers and the local SMTP server: the invitation sent again (the old code
and link stop working), a login lock lifted, templated SMS in the participant's language,
free text only for the roles allowed it, e-mail through the e-mail outbox (retried while the
mail server is down), and documents sent as AES-256 encrypted PDFs with the password by SMS.
Every action is refused to a role that may not, and recorded in the audit log."""

from __future__ import annotations

import html
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pikepdf
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from panel_core.audit import log as audit
from panel_core.cases.retention import RetentionJob
from panel_core.clock import SystemClock
from panel_core.db.models import (
    AuditEvent,
    Case,
    Document,
    EmailMessage,
    EmailState,
    Participant,
    SmsMessage,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.notifications.email_outbox import enqueue_email
from panel_core.notifications.sms_templates import render_sms
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from staff.app import create_app
from tests import credit
from tests.conftest import Stack
from tests.contact_helpers import ContactCase, contact_case, invitation_login, signed_in
from tests.helpers import (
    PDF_BYTES,
    csrf_token,
    eventually,
    open_tasks,
    sign_in,
)
from tests.mail_inbox import attachment_of, mails_to, next_mail
from tests.sms_inbox import code_in, messages_to, next_message
from tests.staff_helpers import StaffBrowser

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]
# A document password: 12 of the letters and digits secure_delivery draws from.
PASSWORD = re.compile(r"(?<![A-Za-z0-9])([A-HJ-NP-Za-km-np-z2-9]{12})(?![A-Za-z0-9])")


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Members of staff, each in their own browser with the dashboard in English."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_as(username: str) -> StaffBrowser:
        client = AsyncTestClient(create_app(staff_settings))
        await client.__aenter__()
        client.cookies.set(LANGUAGE_COOKIE, "en")
        browser = StaffBrowser(client, staff_settings)
        opened.append((browser, client))
        await browser.sign_in(username)
        return browser

    yield open_as
    for browser, client in opened:
        browser.close()
        await client.__aexit__(None, None, None)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def case(settings: Settings) -> ContactCase:
    """One case for the tests that only add messages to it (each counts what it adds)."""
    return await contact_case(settings)


async def events(
    sessions: async_sessionmaker[AsyncSession], event: str, case_id: uuid.UUID
) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event == event, AuditEvent.case_id == case_id)
                .order_by(AuditEvent.id)
            )
        )


async def emails_of(
    sessions: async_sessionmaker[AsyncSession], participant_id: str
) -> list[EmailMessage]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(EmailMessage)
                .where(EmailMessage.participant_id == uuid.UUID(participant_id))
                .order_by(EmailMessage.created_at)
            )
        )


def login_link(settings: Settings, case_number: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/login?case={case_number}"


# -- the invitation again ------------------------------------------------------------------


async def test_an_invitation_sent_again_voids_the_old_code_and_link(
    people: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await contact_case(settings)
    phone, fragment = case.co_borrower["phone"], case.co_borrower["pesel"][-4:]
    first = (await messages_to(settings.redis_url, phone))[0]["text"]
    old_link = re.search(r"https?://\S+", first)
    assert old_link, first
    old_code = httpx.URL(old_link.group(0)).params["code"]

    analyst = await people("anna.analityk")
    refused = await analyst.post_form(
        case.path(case.co_borrower_id, "invitation"), {}, page=case.path()
    )
    assert refused.status_code == 403
    assert len(await messages_to(settings.redis_url, phone)) == 1

    agent = await people("celina.konsultant")
    page = await agent.page(case.path())
    assert f'action="{case.path(case.co_borrower_id, "invitation")}"' in page.text
    sent = await agent.post_form(case.path(case.co_borrower_id, "invitation"), {}, page=case.path())
    assert sent.status_code == 303
    assert sent.headers["location"] == f"{case.path()}?contact=invited#contact"
    shown = await agent.page(f"{case.path()}?contact=invited")
    assert "the one sent before no longer works" in shown.text

    again = await next_message(settings.redis_url, phone, 1)
    new_link = re.search(r"https?://\S+", again)
    assert new_link, again
    new_code = httpx.URL(new_link.group(0)).params["code"]
    assert new_code != old_code and case.case_number in again

    # The old link carries the old code: it opens nothing any more, the new one does.
    old = await invitation_login(settings, case.case_number, fragment, old_code)
    assert old.status_code == 400 and not signed_in(old)
    assert signed_in(await invitation_login(settings, case.case_number, fragment, new_code))

    recorded = await events(sessions, audit.INVITATION_RESENT, case.case_id)
    assert [(e.staff_name, e.details["username"]) for e in recorded] == [
        ("Celina Wiśniewska", "celina.konsultant")
    ]
    assert str(recorded[0].participant_id) == case.co_borrower_id


# -- a login lock lifted --------------------------------------------------------------------


async def test_a_locked_sign_in_is_lifted_from_the_case_page(
    people: Opener, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await contact_case(settings)
    phone, fragment = case.borrower["phone"], case.borrower["pesel"][-4:]
    code = code_in((await messages_to(settings.redis_url, phone))[0]["text"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    strict = msgspec.structs.replace(settings, login_max_failures=2)
    await invitation_login(strict, case.case_number, fragment, wrong)
    locked = await invitation_login(strict, case.case_number, fragment, wrong)
    assert locked.status_code == 423
    # Locked: even the right code is refused now.
    assert (await invitation_login(settings, case.case_number, fragment, code)).status_code == 423

    unlock = case.path(case.borrower_id, "unlock")
    analyst = await people("anna.analityk")
    assert (await analyst.post_form(unlock, {}, page=case.path())).status_code == 403

    adviser = await people("bartosz.doradca")
    page = await adviser.page(case.path())
    assert f'action="{unlock}"' in page.text
    assert "locked for 30 more minutes" in page.text
    lifted = await adviser.post_form(unlock, {}, page=case.path())
    assert lifted.status_code == 303
    after = await adviser.page(f"{case.path()}?contact=unlocked")
    assert "sign-in is unlocked" in after.text
    assert f'action="{unlock}"' not in after.text

    assert signed_in(await invitation_login(settings, case.case_number, fragment, code))
    recorded = await events(sessions, audit.LOGIN_UNLOCKED, case.case_id)
    assert [e.details["username"] for e in recorded] == ["bartosz.doradca"]


# -- messages -------------------------------------------------------------------------------


async def test_a_templated_sms_arrives_in_the_participants_language(
    people: Opener,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    agent = await people("celina.konsultant")
    form = await agent.page(case.path(case.borrower_id, "message"))
    assert form.status_code == 200
    # The case type's own message, previewed in the staff's language.
    assert "The bank asks for a current proof of income" in form.text
    link = login_link(settings, case.case_number)

    for who, participant_id, expected in (
        (
            case.borrower,
            case.borrower_id,
            f"Bank prosi o aktualne zaswiadczenie o dochodach w sprawie {case.case_number}. "
            f"Dodaj je w panelu: {link}",
        ),
        (
            case.co_borrower,
            case.co_borrower_id,
            f"The bank asks for a current proof of income in case {case.case_number}. "
            f"Add it in the panel: {link}",
        ),
    ):
        seen = len(await messages_to(settings.redis_url, who["phone"]))
        sent = await agent.post_form(
            case.path(participant_id, "message"),
            {"channel": "sms", "message": "income-proof"},
            page=case.path(participant_id, "message"),
        )
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].endswith("?contact=sms-sent#contact")
        assert await next_message(settings.redis_url, who["phone"], seen) == expected

    # One of the panel's own messages, in each participant's language from the catalogs.
    context = {"case_number": case.case_number, "link": link}
    for who, participant_id in (
        (case.co_borrower, case.co_borrower_id),
        (case.borrower, case.borrower_id),
    ):
        seen = len(await messages_to(settings.redis_url, who["phone"]))
        sent = await agent.post_form(
            case.path(participant_id, "message"),
            {"channel": "sms", "message": "reminder"},
            page=case.path(participant_id, "message"),
        )
        assert sent.status_code == 303
        text = await next_message(settings.redis_url, who["phone"], seen)
        assert text == render_sms("staff-reminder", who["locale"], context)
        assert case.case_number in text
    assert "Reminder from the bank" in render_sms("staff-reminder", "en", context)

    recorded = await events(sessions, audit.STAFF_MESSAGE_SENT, case.case_id)
    assert [(e.details["channel"], e.details["message"]) for e in recorded] == [
        ("sms", "income-proof"),
        ("sms", "income-proof"),
        ("sms", "reminder"),
        ("sms", "reminder"),
    ]
    assert {e.details["username"] for e in recorded} == {"celina.konsultant"}

    # An unknown message, or none chosen, is a clear error on the same form.
    wrong = await agent.post_form(
        case.path(case.borrower_id, "message"),
        {"channel": "sms", "message": "made-up"},
        page=case.path(case.borrower_id, "message"),
    )
    assert wrong.status_code == 400
    assert "There is a problem" in wrong.text and "Choose one of the messages." in wrong.text


async def test_free_text_is_only_for_the_roles_allowed_to_write_it(
    people: Opener,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    message = case.path(case.co_borrower_id, "message")
    phone = case.co_borrower["phone"]
    adviser = await people("bartosz.doradca")
    form = await adviser.page(message)
    assert form.status_code == 200 and 'value="own"' not in form.text
    seen = len(await messages_to(settings.redis_url, phone))
    refused = await adviser.post_form(
        message, {"channel": "sms", "message": "own", "text": "Prosze o telefon."}, page=message
    )
    assert refused.status_code == 403
    async with sessions() as session:
        written = await session.scalars(
            select(SmsMessage).where(
                SmsMessage.participant_id == uuid.UUID(case.co_borrower_id),
                SmsMessage.purpose == "staff-text",
            )
        )
        assert written.all() == []

    agent = await people("celina.konsultant")
    assert 'value="own"' in (await agent.page(message)).text
    empty = await agent.post_form(
        message, {"channel": "sms", "message": "own", "text": "   "}, page=message
    )
    assert empty.status_code == 400 and "Write the message." in empty.text
    too_long = "x" * 460
    kept = await agent.post_form(
        message, {"channel": "sms", "message": "own", "text": too_long}, page=message
    )
    assert kept.status_code == 400 and "at most 459 characters" in kept.text
    # What was typed stays in the box.
    assert f">{too_long}</textarea>" in kept.text

    text = "Good news {not a placeholder}: we have everything. Zażółć gęślą jaźń."
    sent = await agent.post_form(
        message, {"channel": "sms", "message": "own", "text": text}, page=message
    )
    assert sent.status_code == 303
    assert await next_message(settings.redis_url, phone, seen) == text
    own = [
        e
        for e in await events(sessions, audit.STAFF_MESSAGE_SENT, case.case_id)
        if e.details["message"] == "own"
    ]
    assert len(own) == 1 and own[0].details["username"] == "celina.konsultant"
    # The audit log proves what was sent without keeping the words themselves.
    assert own[0].details["length"] == len(text) and len(own[0].details["text_sha256"]) == 64
    assert text not in json.dumps(own[0].details, ensure_ascii=False)


async def test_an_email_notification_reaches_the_mail_server(
    people: Opener,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = case.co_borrower["email"]
    seen = len(await mails_to(settings.redis_url, address))
    manager = await people("magda.kierownik")
    message = case.path(case.co_borrower_id, "message")
    sent = await manager.post_form(message, {"channel": "email", "message": "news"}, page=message)
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("?contact=email-sent#contact")

    mail = await next_mail(settings.redis_url, address, seen)
    assert mail["subject"] == f"Your case {case.case_number}"
    assert mail["from"] == settings.mail_from
    assert f"There is news in your case {case.case_number}." in mail["text"]
    assert login_link(settings, case.case_number) in mail["text"]
    assert mail["attachments"] == []

    async def delivered() -> EmailMessage | None:
        rows = await emails_of(sessions, case.co_borrower_id)
        return rows[-1] if rows and rows[-1].state == EmailState.SENT else None

    row = await eventually(delivered)
    assert row.message_id == mail["message_id"] and row.body is None
    recorded = await events(sessions, audit.STAFF_MESSAGE_SENT, case.case_id)
    assert ("email", "news", "magda.kierownik") in {
        (e.details["channel"], e.details["message"], e.details["username"]) for e in recorded
    }


async def test_the_email_outbox_keeps_trying_while_the_mail_server_is_down(
    people: Opener,
    stack: Stack,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = case.borrower["email"]
    seen = len(await mails_to(settings.redis_url, address))
    manager = await people("magda.kierownik")
    message = case.path(case.borrower_id, "message")
    stack.smtp.halt()
    try:
        sent = await manager.post_form(
            message, {"channel": "email", "message": "call-us"}, page=message
        )
        assert sent.status_code == 303

        async def retried() -> EmailMessage | None:
            rows = await emails_of(sessions, case.borrower_id)
            row = rows[-1] if rows else None
            return row if row is not None and row.attempts >= 2 else None

        row = await eventually(retried, within=30)
        assert row.state == EmailState.PENDING and row.body
        assert row.last_error and "connect" in row.last_error.lower()
        assert len(await mails_to(settings.redis_url, address)) == seen
    finally:
        stack.smtp.start()

    mail = await next_mail(settings.redis_url, address, seen)
    assert case.case_number in mail["subject"]

    async def delivered() -> EmailMessage | None:
        rows = await emails_of(sessions, case.borrower_id)
        return rows[-1] if rows[-1].state == EmailState.SENT else None

    done = await eventually(delivered)
    assert done.attempts >= 3 and done.last_error is None and done.body is None
    # Delivered once: the retries left one message in the mailbox.
    assert len(await mails_to(settings.redis_url, address)) == seen + 1


# -- documents sent securely ------------------------------------------------------------------


async def uploaded_by(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    participant_id: str,
    name: str,
    content: bytes,
    kind: str,
) -> uuid.UUID:
    """A file the participant attached to their proof of income, through the panel."""
    async with AsyncTestClient(panel_app(settings)) as client:
        await sign_in(client, participant_id)
        tasks = await open_tasks(client, 3)
        income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
        uploaded = await client.post(
            f"/api/participant/tasks/{income['id']}/documents",
            files={"incomeProof": (name, content, kind)},
            headers={"x-csrftoken": csrf_token(client)},
        )
        assert uploaded.status_code == 201, uploaded.text
    async with sessions() as session:
        found = await session.scalar(
            select(Document.id)
            .where(Document.participant_id == uuid.UUID(participant_id), Document.filename == name)
            .order_by(Document.uploaded_at.desc())
        )
    assert found is not None
    return found


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (600, 400), (20, 120, 200, 160)).save(out, format="PNG")
    return out.getvalue()


async def test_a_document_goes_by_email_encrypted_and_its_password_by_sms(
    people: Opener,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    documents = {
        name: await uploaded_by(settings, sessions, case.borrower_id, name, content, kind)
        for name, content, kind in (
            ("income-proof.pdf", PDF_BYTES, "application/pdf"),
            ("payslip-photo.png", png_bytes(), "image/png"),
        )
    }
    document_page = case.path(case.borrower_id, "document")

    agent = await people("celina.konsultant")
    assert (await agent.page(document_page)).status_code == 403
    refused = await agent.post_form(
        document_page, {"document": f"document:{documents['income-proof.pdf']}"}, page=case.path()
    )
    assert refused.status_code == 403

    adviser = await people("bartosz.doradca")
    page = await adviser.page(document_page)
    assert page.status_code == 200
    assert "income-proof.pdf" in page.text and "payslip-photo.png" in page.text
    address, phone = case.borrower["email"], case.borrower["phone"]

    for filename, attachment_name in (
        ("income-proof.pdf", "income-proof.pdf"),
        ("payslip-photo.png", "payslip-photo.pdf"),
    ):
        mails = len(await mails_to(settings.redis_url, address))
        texts = len(await messages_to(settings.redis_url, phone))
        sent = await adviser.post_form(
            document_page, {"document": f"document:{documents[filename]}"}, page=document_page
        )
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].endswith("?contact=document-sent#contact")

        mail = await next_mail(settings.redis_url, address, mails)
        assert case.case_number in mail["subject"]
        assert [a["name"] for a in mail["attachments"]] == [attachment_name]
        name, media_type, protected = await attachment_of(settings.redis_url, mail)
        assert (name, media_type) == (attachment_name, "application/pdf")
        sms = await next_message(settings.redis_url, phone, texts)
        found = PASSWORD.search(sms.replace(case.case_number, ""))
        assert found, sms
        password = found.group(1)
        # The e-mail alone opens nothing, and says nothing of the password.
        assert password not in mail["text"] and password not in mail["subject"]
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(io.BytesIO(protected))
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(io.BytesIO(protected), password="wrong-password")
        with pikepdf.open(io.BytesIO(protected), password=password) as pdf:
            assert pdf.is_encrypted and len(pdf.pages) == 1
            encryption = pdf.encryption
            assert (encryption.R, encryption.bits) == (6, 256)
            assert encryption.stream_method.name == "aesv3"
            if filename.endswith(".png"):
                # The picture itself, laid out on the page.
                assert len(pdf.pages[0].get_images()) == 1
        # The demo's outbox page shows the e-mail, and hands out the attachment as it came.
        async with AsyncTestClient(panel_app(settings)) as panel:
            outbox = await panel.get("/dev/outbox")
            assert outbox.status_code == 200 and mail["subject"] in html.unescape(outbox.text)
            download = await panel.get(f"/dev/outbox/mail/{mail['id']}/attachments/0")
            assert download.status_code == 200 and download.content == protected
            assert download.headers["content-type"] == "application/pdf"
            assert (
                await panel.get(f"/dev/outbox/mail/{mail['id']}/attachments/1")
            ).status_code == 404

    recorded = await events(sessions, audit.DOCUMENT_SENT_SECURELY, case.case_id)
    assert [(e.details["document"], e.details["converted"]) for e in recorded] == [
        (str(documents["income-proof.pdf"]), False),
        (str(documents["payslip-photo.png"]), True),
    ]
    assert {e.details["username"] for e in recorded} == {"bartosz.doradca"}

    async def sent_and_cleared() -> list[EmailMessage] | None:
        rows = [r for r in await emails_of(sessions, case.borrower_id) if r.attachment_name]
        done = all(r.state == EmailState.SENT and r.attachment is None for r in rows)
        return rows if len(rows) == 2 and done else None

    # Once sent, the outbox keeps neither the document nor the password.
    await eventually(sent_and_cleared)

    async def passwords_cleared() -> bool:
        async with sessions() as session:
            bodies = await session.scalars(
                select(SmsMessage.body).where(
                    SmsMessage.participant_id == uuid.UUID(case.borrower_id),
                    SmsMessage.purpose == "document-password",
                )
            )
            listed = list(bodies)
        return len(listed) == 2 and all(body is None for body in listed)

    assert await eventually(passwords_cleared)


async def test_another_participants_document_is_not_sent(
    people: Opener,
    settings: Settings,
    case: ContactCase,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    theirs = await uploaded_by(
        settings, sessions, case.borrower_id, "borrowers-payslip.pdf", PDF_BYTES, "application/pdf"
    )
    adviser = await people("bartosz.doradca")
    mine = case.path(case.co_borrower_id, "document")
    page = await adviser.page(mine)
    assert "borrowers-payslip.pdf" not in page.text
    mails = len(await mails_to(settings.redis_url, case.co_borrower["email"]))
    for forged in (f"document:{theirs}", f"document:{uuid.uuid4()}", "signature:x", ""):
        answer = await adviser.post_form(mine, {"document": forged}, page=mine)
        assert answer.status_code == 400, forged
        assert "Choose one of this participant's documents." in html.unescape(answer.text)
    async with sessions() as session:
        queued = await session.scalars(
            select(EmailMessage).where(
                EmailMessage.participant_id == uuid.UUID(case.co_borrower_id),
                EmailMessage.attachment_name.is_not(None),
            )
        )
        assert queued.all() == []
    assert len(await mails_to(settings.redis_url, case.co_borrower["email"])) == mails


# -- the purge ---------------------------------------------------------------------------------


async def test_the_purge_of_contact_details_takes_the_email_address_and_the_mail(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await contact_case(settings)
    async with sessions() as session:
        await enqueue_email(
            session,
            idempotency_key=f"test:{uuid.uuid4()}",
            purpose="staff-email",
            to_address=case.borrower["email"],
            locale="pl",
            subject="Twoja sprawa",
            body="Treść",
            mail_from=settings.mail_from,
            participant_id=uuid.UUID(case.borrower_id),
            case_id=case.case_id,
        )
        # Long overdue, so this run takes this case first.
        long_ago = datetime(2000, 1, 1, tzinfo=UTC)
        await session.execute(
            update(Case)
            .where(Case.id == case.case_id)
            .values(closed_at=long_ago, access_until=long_ago, purge_after=long_ago)
        )
        await session.commit()
    report = await RetentionJob(
        sessions, LocalDiskStorage(settings.document_storage_dir), SystemClock()
    ).run_once(limit=1)
    assert report.purged == [case.case_number]
    async with sessions() as session:
        people = list(
            await session.scalars(select(Participant).where(Participant.case_id == case.case_id))
        )
        mails = list(
            await session.scalars(select(EmailMessage).where(EmailMessage.case_id == case.case_id))
        )
    assert [p.email for p in people] == [None, None]
    assert mails and all(m.to_address == "" and m.body is None for m in mails)
