"""A document the bank rejected is replaced by its participant from the case overview, after
the task it came with is long sent; against the real engine, database and Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, FilePayload, Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.audit import log as audit
from panel_core.db.models import AuditEvent, Case, Document, DocumentState, PanelTask
from panel_core.documents.scanning import EICAR_SIGNATURE, EicarScanner
from panel_core.documents.service import Limits, UploadRefusedError, replace_document
from panel_core.documents.storage import LocalDiskStorage
from panel_core.settings import Settings
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    PDF_BYTES,
    complete,
    csrf_headers,
    csrf_token,
    engine_post,
    eventually,
    forms_done_until_signing,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
    sign_task,
    upload_document,
)
from tests.test_accessibility import WIDTHS, browser, check, installed, panel

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

__all__ = ["browser", "installed", "panel"]  # fixtures shared with the accessibility tests

REASON = "Nieczytelny skan"
NEW_FILE = "zaswiadczenie-nowe.pdf"
INFECTED_PDF = PDF_BYTES + EICAR_SIGNATURE + b"\n%%EOF\n"
BANK = {"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"}


async def income_proof_sent(client: AsyncTestClient[Any]) -> str:
    """Upload a proof of income with the income task and send the task; the document's id."""
    tasks = await open_tasks(client, 3)
    income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
    uploaded = await upload_document(client, income["id"], "incomeProof")
    assert uploaded.status_code == 201, uploaded.text
    sent = await complete(client, income)
    assert sent.status_code == 202, sent.text
    (document_id,) = uploaded.json()["documents"]["incomeProof"]
    return str(document_id)


async def review(settings: Settings, document_id: str, *, accepted: bool) -> httpx.Response:
    """The bank's verdict, through the channels' API its back office uses."""
    async with AsyncTestClient(create_app(settings)) as bank:
        return await bank.post(
            f"/api/channel/documents/{document_id}/review",
            json={"accepted": accepted, "note": "" if accepted else REASON},
            headers=BANK,
        )


async def reject(settings: Settings, document_id: str) -> None:
    verdict = await review(settings, document_id, accepted=False)
    assert verdict.status_code == 201, verdict.text


async def replace_on_page(
    client: AsyncTestClient[Any], document_id: str, content: bytes = PDF_BYTES
) -> httpx.Response:
    """Send the overview's form for the document, as a browser without JavaScript does."""
    return await client.post(
        f"/documents/{document_id}/replacement",
        data={"_csrf_token": csrf_token(client)},
        files={"file": (NEW_FILE, content, "application/pdf")},
        follow_redirects=False,
    )


async def replace_by_api(
    client: AsyncTestClient[Any], document_id: str, content: bytes = PDF_BYTES
) -> httpx.Response:
    return await client.post(
        f"/api/participant/documents/{document_id}/replacement",
        files={"file": (NEW_FILE, content, "application/pdf")},
        headers=csrf_headers(client),
    )


async def stored(sessions: async_sessionmaker[AsyncSession], document_id: str) -> Document:
    async with sessions() as session:
        document = await session.get(Document, uuid.UUID(document_id))
    assert document is not None
    return document


async def replacements(
    sessions: async_sessionmaker[AsyncSession], document_id: str
) -> list[Document]:
    async with sessions() as session:
        found = await session.scalars(
            select(Document).where(Document.replaces_id == uuid.UUID(document_id))
        )
        return list(found)


def files_in(settings: Settings) -> int:
    return sum(1 for p in Path(settings.document_storage_dir).rglob("*") if p.is_file())


async def test_a_rejected_document_is_replaced_from_the_overview(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )
    me, other = (p["participantId"] for p in case["participants"])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        old_id = await income_proof_sent(client)
        await reject(stack.settings, old_id)

        # The task is sent, yet the overview says why the file was rejected and takes a new one.
        page = (await client.get("/case/")).text
        assert "Odrzucony" in page and f"Powód: {REASON}" in page
        form = page.split(f'action="/documents/{old_id}/replacement#documents"')[1]
        form = form.split("</form>")[0]
        assert 'enctype="multipart/form-data"' in page
        assert f'<label for="replacement-{old_id}">Nowy plik: „Zaświadczenie o dochodach”' in form
        assert f'<p id="replacement-hint-{old_id}" class="hint">PDF, JPG lub PNG, do 10 MB.' in form
        assert f'aria-describedby="replacement-hint-{old_id}"' in form
        assert 'name="_csrf_token"' in form and "Wyślij nowy" in form

    # The co-borrower can neither replace it nor learn that it exists.
    async with AsyncTestClient(create_app(stack.settings)) as intruder:
        await sign_in(intruder, other)
        theirs = await replace_on_page(intruder, old_id)
        nothing = await replace_on_page(intruder, str(uuid.uuid4()))
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.content == nothing.content
        assert (await replace_by_api(intruder, old_id)).status_code == 404
    assert (await stored(sessions, old_id)).state == DocumentState.REJECTED
    assert await replacements(sessions, old_id) == []

    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        sent = await replace_on_page(client, old_id)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == "/case/?replaced=1"
        page = (await client.get(sent.headers["location"])).text
        assert "Dziękujemy. Bank otrzymał nowy dokument i go sprawdzi." in page
        assert NEW_FILE in page and "Wysłany, czeka na sprawdzenie" in page
        assert "Wysłany w miejsce pliku income-proof.pdf, który bank odrzucił." in page
        # Dealt with: no longer shown as rejected, and nothing left to send for it.
        assert "Odrzucony" not in page and REASON not in page and "/replacement" not in page
        assert "Ty: wysłano nowy dokument w miejsce odrzuconego" in page

        old = await stored(sessions, old_id)
        assert old.state == DocumentState.REPLACED and old.review_note == REASON
        (new,) = await replacements(sessions, old_id)
        assert new.state == DocumentState.UPLOADED and new.filename == NEW_FILE
        assert (new.field_key, new.panel_task_id, new.case_id) == (
            old.field_key,
            old.panel_task_id,
            old.case_id,
        )
        async with sessions() as session:
            (audited,) = await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.case_id == old.case_id, AuditEvent.event == audit.DOCUMENT_REPLACED
                )
            )
        assert audited.participant_id == old.participant_id
        assert audited.details["document"] == str(new.id)
        assert audited.details["replaces"] == old_id
        # The rejected file stays: it is the bank's record of what it turned down.
        kept = await client.get(f"/documents/{old_id}")
        assert kept.status_code == 200 and kept.content == PDF_BYTES

        # A file waiting for review is not replaced.
        early = await replace_on_page(client, str(new.id))
        assert early.status_code == 400
        assert "Nowy plik możesz wysłać tylko w miejsce dokumentu odrzuconego przez bank." in (
            early.text
        )

    # The bank reviews the new one; the old one's rejection stands.
    accepted = await review(stack.settings, str(new.id), accepted=True)
    assert accepted.status_code == 201 and accepted.json()["state"] == "accepted"
    again = await review(stack.settings, old_id, accepted=True)
    assert again.status_code == 409
    assert (await stored(sessions, old_id)).state == DocumentState.REPLACED

    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        assert "Przyjęty" in (await client.get("/case/")).text
        late = await replace_by_api(client, str(new.id))
        assert late.status_code == 400
        assert "odrzuconego przez bank" in late.json()["detail"]
    assert await replacements(sessions, str(new.id)) == []


async def test_a_refused_file_leaves_the_rejected_document_as_it_was(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        old_id = await income_proof_sent(client)
        await reject(stack.settings, old_id)
        files = files_in(stack.settings)

        infected = await replace_on_page(client, old_id, INFECTED_PDF)
        assert infected.status_code == 400
        page = infected.text
        message = f"Plik „{NEW_FILE}” został odrzucony, ponieważ zawiera wirusa"
        summary = page.split('class="error-summary"')[1].split("</div>")[0]
        assert f'<a href="#replacement-{old_id}">{message}' in summary
        # The message is also at the field, which it describes; the reason stays on show.
        assert f'id="replacement-error-{old_id}"' in page
        assert f'aria-describedby="replacement-hint-{old_id} replacement-error-{old_id}"' in page
        assert f"Powód: {REASON}" in page

        not_a_pdf = await replace_by_api(client, old_id, b"<html>not a pdf</html>")
        assert not_a_pdf.status_code == 400
        assert "nie jest plikiem PDF, JPG ani PNG" in not_a_pdf.json()["detail"]

        no_file = await client.post(
            f"/documents/{old_id}/replacement",
            data={"_csrf_token": csrf_token(client)},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert no_file.status_code == 400 and "Wybierz plik do wysłania." in no_file.text

        # Without the token nothing is read, let alone kept.
        forged = await client.post(
            f"/documents/{old_id}/replacement",
            files={"file": (NEW_FILE, PDF_BYTES, "application/pdf")},
        )
        assert forged.status_code == 403

    assert (await stored(sessions, old_id)).state == DocumentState.REJECTED
    assert await replacements(sessions, old_id) == []
    assert files_in(stack.settings) == files


async def test_two_replacements_at_once_leave_exactly_one_new_document(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        old_id = await income_proof_sent(client)
        await reject(stack.settings, old_id)
        files = files_in(stack.settings)
        # Two tabs, or a double click: both forms are sent before either is answered.
        answers = await asyncio.gather(
            replace_by_api(client, old_id), replace_by_api(client, old_id)
        )
    assert sorted(a.status_code for a in answers) == [201, 400], [a.text for a in answers]
    (winner,) = [a.json() for a in answers if a.status_code == 201]
    (loser,) = [a.json() for a in answers if a.status_code == 400]
    assert (
        "Już wysłano nowy plik w miejsce dokumentu „Zaświadczenie o dochodach”" in (loser["detail"])
    )
    (new,) = await replacements(sessions, old_id)
    assert winner == {"documentId": str(new.id), "state": "uploaded", "replaces": old_id}
    assert (await stored(sessions, old_id)).state == DocumentState.REPLACED
    # The refused copy left no file behind.
    assert files_in(stack.settings) == files + 1


async def test_a_replacement_that_loses_the_race_is_refused_by_the_database(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Both replacements pass every check before either writes: only the update that still
    finds the document rejected wins, whatever the order they arrive in."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    participant_id = uuid.UUID(case["participants"][0]["participantId"])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, str(participant_id))
        old_id = await income_proof_sent(client)
    await reject(stack.settings, old_id)
    storage = LocalDiskStorage(Path(stack.settings.document_storage_dir))
    files = files_in(stack.settings)
    started: list[int] = []
    both_checked = asyncio.Event()

    async def held_back() -> AsyncIterator[bytes]:
        # The file is read only once the document was found replaceable: wait for both.
        started.append(1)
        if len(started) == 2:
            both_checked.set()
        await both_checked.wait()
        yield PDF_BYTES

    async def attempt() -> Document | str:
        async with sessions() as session:
            rejected = await session.get(Document, uuid.UUID(old_id))
            assert rejected is not None
            try:
                document = await replace_document(
                    session,
                    storage,
                    EicarScanner(),
                    rejected=rejected,
                    participant_id=participant_id,
                    filename=NEW_FILE,
                    chunks=held_back(),
                    limits=Limits(max_bytes=stack.settings.document_max_bytes),
                )
            except UploadRefusedError as refused:
                await session.rollback()
                return str(refused)
            await session.commit()
            return document

    outcomes = await asyncio.wait_for(asyncio.gather(attempt(), attempt()), timeout=30)
    kept = [o for o in outcomes if isinstance(o, Document)]
    refused = [o for o in outcomes if isinstance(o, str)]
    assert len(kept) == 1 and len(refused) == 1, outcomes
    assert [d.id for d in await replacements(sessions, old_id)] == [kept[0].id]
    assert files_in(stack.settings) == files + 1


async def test_no_replacement_once_the_case_has_ended(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case_via_channel(stack.settings, [borrower])
    case_id = uuid.UUID(case["caseId"])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        signing = await forms_done_until_signing(client)
        signed = await sign_task(client, signing["id"], borrower["phone"], stack.settings.redis_url)
        assert signed.status_code == 202, signed.text
    async with sessions() as session:
        old_id = str(
            await session.scalar(
                select(Document.id).where(
                    Document.case_id == case_id, Document.field_key == "incomeProof"
                )
            )
        )
    # The bank rejects the proof, then decides the case anyway: it has ended.
    await reject(stack.settings, old_id)

    async def analyst_task() -> PanelTask | None:
        async with sessions() as session:
            found: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == case_id,
                    PanelTask.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW,
                )
            )
            return found

    analyst = await eventually(analyst_task, within=60)
    decided = await engine_post(
        f"{stack.settings.camunda_rest_url}/v2/user-tasks/{analyst.user_task_key}/completion",
        {
            "variables": {
                credit.VAR_DECISION: credit.DECISION_APPROVED,
                "decisionReason": "Solvent.",
            }
        },
    )
    assert decided.status_code == 204, decided.text

    async def approved() -> bool:
        async with sessions() as session:
            status = await session.scalar(select(Case.status).where(Case.id == case_id))
        return status == credit.STATUS_APPROVED

    await eventually(approved, within=30)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        page = (await client.get("/case/")).text
        # The verdict stays readable; there is nothing more to send.
        assert f"Powód: {REASON}" in page and "/replacement" not in page
        refused = await replace_on_page(client, old_id)
        assert refused.status_code == 400
        assert "Sprawa została zakończona, więc bank nie przyjmuje już do niej dokumentów." in (
            refused.text
        )
        assert (await replace_by_api(client, old_id)).status_code == 400
    assert (await stored(sessions, old_id)).state == DocumentState.REJECTED
    assert await replacements(sessions, old_id) == []


async def check_widths(page: Page, name: str) -> None:
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await check(page, width, name)


@pytest.mark.browser
async def test_the_replacement_form_works_in_a_browser_and_passes_axe(
    panel: str, browser: Browser, stack: Stack
) -> None:
    async with httpx.AsyncClient() as channel:
        opened = await channel.post(
            f"{panel}/api/channel/cases",
            json={
                "caseType": credit.CASE_TYPE_CREDIT,
                "participants": [person(credit.ROLE_PRIMARY_BORROWER, 0)],
            },
            headers=BANK,
        )
    assert opened.status_code == 201, opened.text
    participant_id = opened.json()["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, participant_id)
        old_id = await income_proof_sent(client)
    await reject(stack.settings, old_id)

    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    try:
        await page.goto(f"{panel}/dev/sign-in?participant={participant_id}")
        await page.click("form[action='/dev/sign-in'] button[type=submit]")
        await page.wait_for_url(f"{panel}/case/")
        await check_widths(page, "overview with a rejected document")

        field = f"#replacement-{old_id}"
        await page.set_input_files(
            field,
            files=[FilePayload(name="scan.pdf", mimeType="application/pdf", buffer=INFECTED_PDF)],
        )
        await page.get_by_role("button", name=re.compile("^Wyślij nowy")).click()
        await page.wait_for_url(f"{panel}/documents/{old_id}/replacement#documents")
        await page.wait_for_selector(".error-summary")
        await check_widths(page, "overview with a refused replacement")
        # The summary's link takes the person to the file input.
        await page.click(".error-summary a")
        assert await page.evaluate("document.activeElement.id") == f"replacement-{old_id}"

        await page.set_input_files(
            field,
            files=[FilePayload(name="scan.pdf", mimeType="application/pdf", buffer=PDF_BYTES)],
        )
        await page.get_by_role("button", name=re.compile("^Wyślij nowy")).click()
        await page.wait_for_url(f"{panel}/case/?replaced=1#documents")
        assert "Bank otrzymał nowy dokument" in await page.inner_text(".notice[role=status]")
        await check_widths(page, "overview after a replacement")
    finally:
        await context.close()
