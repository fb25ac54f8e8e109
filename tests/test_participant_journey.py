"""A co-borrower's whole share of a credit case, in headless Chromium against the real engine.

Signs in with the SMS code, reads the overview, fills each form (errors first), uploads a
document with the page's upload progress, gives consents and signs with a code bound to the
document, while another participant's action appears on the open page by itself.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, Page

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from tests import credit
from tests.conftest import Stack
from tests.helpers import PDF_BYTES, csrf_headers, eventually, person, sign_in
from tests.sms_inbox import code_in, message_naming, next_message
from tests.test_accessibility import axe_violations, browser, installed, panel

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
SEND = "form[action^='/tasks/'] button[type=submit]:not([name]):not([formaction])"
__all__ = ["browser", "installed", "panel"]  # fixtures shared with the accessibility tests


async def axe_clean(page: Page, name: str) -> None:
    assert await axe_violations(page) == [], name


async def open_task(page: Page, panel: str, name: str) -> None:
    deadline = time.monotonic() + 60
    link = page.locator(".task-list[data-state=open] a", has_text=name)
    while not await link.count():
        assert time.monotonic() < deadline, f"task {name!r} did not appear"
        await page.wait_for_timeout(500)
        await page.goto(f"{panel}/case/")
    await link.click()
    await page.wait_for_url(re.compile(r".*/tasks/[0-9a-f-]+"))


async def send_with_errors_first(page: Page) -> None:
    await page.click(SEND)
    assert (await page.title()).startswith("Błąd:")
    summary = page.locator(".error-summary a")
    assert await summary.count() >= 1
    # Each summary link leads to its field, whose description names the error.
    first = await summary.first.get_attribute("href")
    assert first and first.startswith("#field-")
    field_id = first[1:]
    described = await page.get_attribute(f"[id='{field_id}']", "aria-describedby") or ""
    if not described:
        described = (
            await page.eval_on_selector(
                f"[id='{field_id}']",
                "el => el.closest('fieldset')?.getAttribute('aria-describedby')",
            )
            or ""
        )
    assert "error-" in described


async def test_a_participant_does_their_whole_share_in_the_browser(
    panel: str, browser: Browser, stack: Stack
) -> None:
    me, other = person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)
    async with httpx.AsyncClient() as channel:
        created = await channel.post(
            f"{panel}/api/channel/cases",
            json={"caseType": credit.CASE_TYPE_CREDIT, "participants": [me, other]},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    case: dict[str, Any] = created.json()
    redis = stack.settings.redis_url
    await next_message(redis, me["phone"], 0, within=60)  # the invitation
    context = await browser.new_context(viewport={"width": 375, "height": 800}, bypass_csp=True)
    page = await context.new_page()
    try:
        # Sign in to the case: number, PESEL fragment, then the code sent by SMS.
        await page.goto(f"{panel}/login")
        await page.fill("#case", case["caseNumber"])
        await page.fill("#fragment", me["pesel"][-4:])
        await page.click("form[action='/login'] button[type=submit]")
        await page.wait_for_url(f"{panel}/login/code")
        await page.fill("#code", code_in(await next_message(redis, me["phone"], 1)))
        await page.click("form[action='/login/code'] button[type=submit]")
        await page.wait_for_url(f"{panel}/case/")
        assert "Zbieramy informacje" in await page.inner_text(".status-panel")
        assert await page.locator(".timeline [aria-current=step]").count() == 1
        await axe_clean(page, "overview")

        # Another participant acts: the open overview shows it without a reload.
        async with AsyncTestClient(create_app(stack.settings)) as co_borrower:
            await sign_in(co_borrower, case["participants"][1]["participantId"])

            async def their_consents() -> dict[str, Any] | None:
                listed = (await co_borrower.get("/api/participant/tasks")).json()
                return next(
                    (t for t in listed if t["elementId"] == credit.ELEMENT_TASK_CONSENTS), None
                )

            task = await eventually(their_consents, within=60)
            await page.wait_for_timeout(1000)  # the page's event stream is open by now
            done = await co_borrower.post(
                f"/api/participant/tasks/{task['id']}/completion",
                json={"variables": {"consentCreditCheck": True, "consentDataProcessing": True}},
                headers=csrf_headers(co_borrower),
            )
            assert done.status_code == 202
        await page.wait_for_selector(
            "text=Współkredytobiorca 1: wykonano „Złóż zgody”", timeout=20_000
        )

        # Income: errors first, then the answers and the proof, sent with upload progress.
        await open_task(page, panel, "Podaj dochody i wyślij zaświadczenie")
        await send_with_errors_first(page)
        await axe_clean(page, "income with errors")
        await page.select_option("#field-employmentType", "employed")
        await page.fill("#field-monthlyNetIncome", "8200")
        await page.set_input_files(
            "#field-incomeProof",
            files=[
                {"name": "zaswiadczenie.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}
            ],
        )
        await page.click("form[action^='/tasks/'] button[type=submit]:not([name])")
        await page.wait_for_url(f"{panel}/case/")
        assert "zaswiadczenie.pdf" in await page.inner_text("[data-live-region=documents]")

        # Consents.
        await open_task(page, panel, "Złóż zgody")
        await send_with_errors_first(page)
        await page.check("#field-consentCreditCheck")
        await page.check("#field-consentDataProcessing")
        await page.click("form[action^='/tasks/'] button[type=submit]:not([name])")
        await page.wait_for_url(f"{panel}/case/")

        # Questionnaire.
        await open_task(page, panel, "Wypełnij ankietę")
        await send_with_errors_first(page)
        await page.check("#field-maritalStatus")
        await page.fill("#field-dependants", "1")
        await page.click("form[action^='/tasks/'] button[type=submit]:not([name])")
        await page.wait_for_url(f"{panel}/case/")

        # Signing: the code goes by SMS and names the start of the document's fingerprint.
        await open_task(page, panel, "Podpisz wniosek")
        document = " ".join((await page.inner_text(".document-to-sign")).split())
        # The amount as Polish writes it; the file named, and fingerprinted in the appendix.
        assert "8 200,00" in document and "zaswiadczenie.pdf" in document
        await axe_clean(page, "signing")
        fingerprint = await page.inner_text(".fingerprint")
        await page.click("button[formaction$='/signing-code']")
        await page.wait_for_url(re.compile(r".*code=sent.*"))
        # Found by the page's fingerprint: the SMS must carry it.
        text = await message_naming(redis, me["phone"], fingerprint[:8])
        await page.fill("#field-signingCode", "000000" if code_in(text) != "000000" else "111111")
        await page.check("#field-signApplication")
        await page.click(
            "form[action^='/tasks/'] button[type=submit]:not([name]):not([formaction])"
        )
        assert (await page.title()).startswith("Błąd:")
        await page.fill("#field-signingCode", code_in(text))
        await page.check("#field-signApplication")
        await page.click(
            "form[action^='/tasks/'] button[type=submit]:not([name]):not([formaction])"
        )
        await page.wait_for_url(f"{panel}/case/")
        assert "Ty: podpisano wniosek" in await page.inner_text("[data-live-region=activity]")
        await axe_clean(page, "overview at the end")
    finally:
        await context.close()
