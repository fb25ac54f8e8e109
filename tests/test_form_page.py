"""Every form-js component on the real task page, in Chromium with JavaScript switched off.

The reference form (``docs/forms/every-component.form``) is pinned to a real participant task of
a running credit case; the options, table and read-only value it shows come from variables
set on the process instance through the engine's API. The participant fills it in with
errors first, adds and removes a row of a dynamic list, and sends it: the engine completes
the task, and the panel keeps the answers, nested as form-js would have sent them.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import Document, PanelTask, TaskDraft, TaskState, TaskSubmission
from tests import credit
from tests.conftest import Stack
from tests.helpers import PDF_BYTES, eventually, open_case_via_channel, person
from tests.test_accessibility import browser, installed, panel
from tests.test_form_components import EVERY

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "installed", "panel"]

SEND = "form[action^='/tasks/'] button[type=submit]:not([name])"
PROCESS_DATA = {
    "branches": [{"label": "Warszawa", "value": "waw"}, {"label": "Kraków", "value": "krk"}],
    "currencies": ["PLN", "EUR"],
    "history": [{"date": "2026-10-01", "amount": 120}, {"date": "2026-11-01", "amount": 80}],
    "isVip": False,
}


def by_id(element_id: str) -> str:
    """A selector for an id with brackets and dots in it (``owners[0].name``)."""
    return f"[id='{element_id}']"


async def error_links(page: Page) -> list[str]:
    return [
        str(await link.get_attribute("href"))
        for link in await page.locator(".error-summary a").all()
    ]


async def sign_in_demo(page: Page, panel: str, participant_id: str) -> None:
    """Sign in through the demo-mode form, which works without JavaScript."""
    await page.goto(f"{panel}/dev/sign-in")
    await page.fill("#participant", participant_id)
    await page.click("form[action='/dev/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{panel}/case/")


async def pinned_task(
    sessions: async_sessionmaker[AsyncSession], case_id: str, element_id: str
) -> PanelTask:
    async def found() -> PanelTask | None:
        async with sessions() as session:
            task: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == uuid.UUID(case_id), PanelTask.element_id == element_id
                )
            )
            return task

    task: PanelTask = await eventually(found, within=60)
    return task


async def test_every_component_works_on_the_real_page_without_javascript(
    panel: str, browser: Browser, stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    key = case["processInstanceKey"]
    async with httpx.AsyncClient() as engine:
        updated = await engine.put(
            f"{stack.settings.camunda_rest_url}/v2/element-instances/{key}/variables",
            json={"variables": PROCESS_DATA},
            timeout=30,
        )
    assert updated.status_code == 204, updated.text
    task = await pinned_task(sessions, case["caseId"], credit.ELEMENT_TASK_QUESTIONNAIRE)
    async with sessions() as session:
        await session.execute(
            update(PanelTask)
            .where(PanelTask.id == task.id)
            .values(form_schema=json.loads(EVERY.read_text()))
        )
        await session.commit()

    context = await browser.new_context(
        viewport={"width": 375, "height": 800}, java_script_enabled=False
    )
    page = await context.new_page()
    try:
        await sign_in_demo(page, panel, case["participants"][0]["participantId"])

        # What the form reads of the process: options, a table, a read-only value.
        deadline = time.monotonic() + 30
        while True:
            await page.goto(f"{panel}/tasks/{task.id}")
            branches = await page.locator("#field-branch option").all_inner_texts()
            if "Kraków" in branches or time.monotonic() > deadline:
                break
            await page.wait_for_timeout(300)
        assert branches[1:] == ["Warszawa", "Kraków"]
        assert await page.locator("#field-currency option").all_inner_texts() == [
            "Wybierz…",
            "PLN",
            "EUR",
        ]
        assert await page.locator("#table-Table_history tbody tr").count() == 2
        case_number = page.locator("#field-caseNumber")
        assert await case_number.get_attribute("readonly") is not None
        assert await case_number.input_value() == case["caseNumber"]
        assert await page.locator("#field-internalNote").is_disabled()
        # A condition on the process's data alone hides its group at once.
        assert "Oferta VIP" not in await page.inner_text("main")
        # Defaults fill a fresh page.
        assert await page.locator("#field-amount").input_value() == "5000"
        assert await page.locator("input[name=cardType][value=debit]").is_checked()

        # Sent empty: every required field is named, linked and described.
        await page.fill("#field-amount", "")
        await page.click(SEND)
        assert (await page.title()).startswith("Błąd:")
        assert await error_links(page) == [
            "#field-fullName",
            "#field-amount",
            "#field-channels",
            "#field-branch",
            "#field-startDate",
            "#field-address.street",
            "#field-owners[0].name",
        ]
        described = await page.get_attribute("#field-fullName", "aria-describedby")
        assert described == "hint-fullName error-fullName"

        await page.fill("#field-fullName", "Jan Kowalski")
        await page.fill("#field-email", "jan.kowalski(at)example.com")
        await page.fill("#field-postalCode", "00950")
        await page.fill("#field-amount", "25 000")
        await page.check("#field-channels")
        await page.check("input[name=cardType][value=credit]")
        await page.select_option("#field-branch", "krk")
        await page.select_option("#field-currency", "EUR")
        await page.fill("#field-startDate", "2020-01-15")
        await page.fill(by_id("field-address.street"), "Marszałkowska 1")
        await page.fill(by_id("field-owners[0].name"), "Jan")
        await page.fill(by_id("field-owners[0].share"), "60")
        # A second owner, without JavaScript: the page comes back with a row more.
        await page.click("button[name=action][value='add:owners']")
        assert await page.locator(by_id("field-owners[0].name")).input_value() == "Jan"
        assert await page.locator(by_id("field-fullName")).input_value() == "Jan Kowalski"
        await page.fill(by_id("field-owners[1].name"), "Ewa")
        await page.click("button[name=action][value='add:owners']")
        await page.fill(by_id("field-owners[2].name"), "Anna")
        await page.fill(by_id("field-owners[2].share"), "5")
        await page.click("button[name=action][value='remove:owners:1']")
        assert await page.locator(by_id("field-owners[1].name")).input_value() == "Anna"
        assert await page.locator(by_id("field-owners[2].name")).count() == 0

        # Saved for later, rows and groups included, and back as typed.
        await page.fill("#field-meeting", "2099-02-01")
        await page.fill("#field-meeting-time", "09:30")
        await page.click("button[name=action][value=save]")
        await page.wait_for_url(f"{panel}/tasks/{task.id}?saved=1")
        assert await page.locator(by_id("field-owners[1].name")).input_value() == "Anna"
        assert await page.locator(by_id("field-owners[1].share")).input_value() == "5"
        assert await page.locator(by_id("field-address.street")).input_value() == "Marszałkowska 1"
        assert await page.locator("#field-meeting-time").input_value() == "09:30"
        assert await page.locator("#field-branch").input_value() == "krk"

        # Wrong formats, a passed date and a reason the small share needs.
        await page.click(SEND)
        assert await error_links(page) == [
            "#field-email",
            "#field-postalCode",
            "#field-startDate",
            "#field-owners[1].reason",
        ]
        assert "Wpisz kod w formacie 00-000." in await page.inner_text(".error-summary")
        await page.fill("#field-email", "jan.kowalski@example.com")
        await page.fill("#field-postalCode", "00-950")
        await page.fill("#field-startDate", "2099-01-15")
        await page.fill(by_id("field-owners[1].reason"), "Darowizna")
        await page.click(SEND)
        await page.wait_for_url(f"{panel}/case/")
    finally:
        await context.close()

    async def completed() -> bool:
        async with sessions() as session:
            state = await session.scalar(select(PanelTask.state).where(PanelTask.id == task.id))
        return state is TaskState.COMPLETED

    await eventually(completed, within=30)
    async with sessions() as session:
        answers: dict[str, Any] = await session.scalar(
            select(TaskSubmission.answers).where(TaskSubmission.panel_task_id == task.id)
        )
    assert answers["address"] == {"street": "Marszałkowska 1"}
    assert answers["owners"] == [
        {"name": "Jan", "share": 60},
        {"name": "Anna", "share": 5, "reason": "Darowizna"},
    ]
    assert answers["amount"] == 25000 and answers["branch"] == "krk"
    assert answers["channels"] == ["sms"] and answers["cardType"] == "credit"
    assert answers["startDate"] == "2099-01-15"
    assert answers["meeting"] == "2099-02-01T09:30"
    assert Decimal(str(answers["monthlyLimit"])).quantize(Decimal("0.01")) == Decimal("2083.33")
    # Read-only and disabled fields, and the process's own data, never come from the page.
    assert not {"caseNumber", "internalNote", "branches", "history"} & set(answers)


async def test_with_javascript_what_is_typed_is_saved_without_a_click(
    panel: str, browser: Browser, stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    task = await pinned_task(sessions, case["caseId"], credit.ELEMENT_TASK_INCOME)
    context = await browser.new_context(viewport={"width": 375, "height": 800})
    page = await context.new_page()
    try:
        await page.clock.install()
        await sign_in_demo(page, panel, case["participants"][0]["participantId"])
        await page.goto(f"{panel}/tasks/{task.id}")
        await page.fill("#field-monthlyNetIncome", "6400")
        await page.set_input_files(
            "#field-incomeProof",
            files=[{"name": "proof.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}],
        )
        await page.clock.fast_forward(31_000)

        async def draft() -> dict[str, Any] | None:
            async with sessions() as session:
                saved = await session.get(TaskDraft, task.id)
                return dict(saved.answers) if saved is not None else None

        answers = await eventually(draft, within=15)
        # The text is kept; the chosen file waits for its own button.
        assert answers["monthlyNetIncome"] == "6400" and "incomeProof" not in answers
        async with sessions() as session:
            uploaded = await session.scalar(
                select(func.count()).select_from(Document).where(Document.panel_task_id == task.id)
            )
        assert uploaded == 0
    finally:
        await context.close()


async def test_with_javascript_a_condition_on_the_answers_applies_as_they_change(
    panel: str, browser: Browser, stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    task = await pinned_task(sessions, case["caseId"], credit.ELEMENT_TASK_QUESTIONNAIRE)
    context = await browser.new_context(viewport={"width": 375, "height": 800})
    page = await context.new_page()
    try:
        await sign_in_demo(page, panel, case["participants"][0]["participantId"])
        await page.goto(f"{panel}/tasks/{task.id}")
        details = page.locator("#field-otherLoansDetails")
        # "Details of your other loans" only while "I have other loans" is ticked.
        await details.wait_for(state="hidden")
        await page.check("#field-hasOtherLoans")
        await details.wait_for(state="visible")
        await page.fill("#field-otherLoansDetails", "Kredyt samochodowy")
        await page.uncheck("#field-hasOtherLoans")
        await details.wait_for(state="hidden")
        await page.check("#field-hasOtherLoans")
        await details.wait_for(state="visible")
        assert await details.input_value() == "Kredyt samochodowy"
    finally:
        await context.close()
