"""The staff dashboard in a real browser: signing in on Keycloak's own page and out again,
triage with the keyboard alone, the inbox's live updates, and WCAG 2.2 A/AA (axe-core, no
sideways scroll) on every page at 1280 and 320 px.

The dashboard runs as its own process (uvicorn) on the port Keycloak redirects back to,
against the session's real engine, PostgreSQL, Redis and Keycloak; Debian's Chromium is
driven by Playwright.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, BrowserContext, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from panel_core.db.models import CannedAnswer, Case
from panel_core.settings import Settings
from tests import credit
from tests.appointment_helpers import days_ahead
from tests.assisted_helpers import co_borrower_waiting
from tests.bureau_helpers import CaseAtBureau, analyst_task, case_at_the_bureau, open_incident
from tests.chat_staff_helpers import ChatCase, ask, chat_case, write_soon
from tests.conftest import Stack
from tests.contact_helpers import ContactCase, contact_case, invitation_login
from tests.helpers import eventually, open_case_via_channel, open_tasks, person, upload_document
from tests.helpers import sign_in as participant_sign_in
from tests.keycloak_login import DEMO_PASSWORD
from tests.mail_inbox import mails_to
from tests.sms_inbox import code_in, messages_to, next_message
from tests.staff_helpers import CaseInReview, case_in_review
from tests.test_accessibility import axe_violations, browser, installed, panel, serving

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

__all__ = ["browser", "installed", "panel"]  # fixtures shared with the accessibility tests

WIDTHS = (1280, 320)
# Set to a directory to keep a full-page PNG of every page the axe test checks.
SHOTS = os.environ.get("STAFF_BROWSER_SCREENSHOTS", "")
UNASSIGNED_NEWEST = "/?tab=unassigned&sort=created"


# -- the dashboard and the browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(staff_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard where Keycloak sends the browser back: staff_public_base_url."""
    url = staff_settings.staff_public_base_url.rstrip("/")
    port = urlsplit(url).port
    assert port is not None, url
    log = tmp_path_factory.mktemp("staff") / "staff.log"
    with serving("staff.app:app_factory", port, staff_settings, log) as served:
        yield served


async def new_context(browser: Browser, width: int = 1280, *, axe: bool = False) -> BrowserContext:
    # bypass_csp only where axe-core must be let in; elsewhere the pages run under their
    # own policy, live-update script and all.
    return await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=axe)


async def sign_in(page: Page, dashboard: str, issuer: str, username: str) -> None:
    """As a person does: the dashboard sends the browser to Keycloak's own login page."""
    await page.goto(f"{dashboard}/")
    assert page.url.startswith(issuer), page.url
    await page.wait_for_selector("#kc-form-login")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#kc-login")
    await page.wait_for_url(f"{dashboard}/")


async def focused(page: Page, selector: str) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        """selector => {
            const el = document.activeElement;
            if (!el || el === document.body) return {matches: false, visible: true, html: 'body'};
            const style = getComputedStyle(el);
            return {
                matches: el.matches(selector),
                visible: style.outlineStyle !== 'none' || style.boxShadow !== 'none',
                html: el.outerHTML.slice(0, 300),
            };
        }""",
        selector,
    )
    return state


async def tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab (or Shift+Tab) until the element matching ``selector`` has the focus.

    Every stop on the way must show where the focus is; an element not reached within
    ``limit`` presses is not reachable by keyboard, and the test fails.
    """
    key = "Shift+Tab" if backwards else "Tab"
    stops = []
    for _ in range(limit):
        await page.keyboard.press(key)
        state = await focused(page, selector)
        assert state["visible"], f"the focus is not visible on {state['html']}"
        if state["matches"]:
            return
        stops.append(state["html"][:80])
    raise AssertionError(f"{key} x{limit} never reached {selector}; went through {stops}")


async def sideways(page: Page) -> list[str]:
    """What sticks out of a narrow viewport (for the failure message)."""
    found: list[str] = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const out = [];
            for (const el of document.body.querySelectorAll('*')) {
                if (el.closest('.table-wrapper')) continue;
                const box = el.getBoundingClientRect();
                if (box.right > width + 0.5 && box.width > 0) {
                    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                        + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '')
                        + ' right=' + Math.round(box.right));
                }
            }
            return out.slice(0, 15);
        }"""
    )
    return found


async def check(page: Page, width: int, name: str) -> None:
    if SHOTS:
        # Playwright makes the directory.
        slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
        await page.screenshot(path=str(Path(SHOTS) / f"{slug}-{width}.png"), full_page=True)
    violations = await axe_violations(page)
    assert violations == [], f"{name} at {width}px: {violations}"
    if width == 320:
        scroll_width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll_width <= 320, (
            f"{name} scrolls sideways at 320px ({scroll_width}px): {await sideways(page)}"
        )


async def case_status(sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> str:
    async with sessions() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case.status


# -- a. signing in and out ----------------------------------------------------------------


async def test_staff_sign_in_on_keycloaks_page_and_sign_out(
    dashboard: str, browser: Browser, staff_settings: Settings
) -> None:
    issuer = staff_settings.staff_oidc_issuer
    context = await new_context(browser)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, issuer, "anna.analityk")
        assert await page.inner_text(".staff-user") == "Anna Kowalska"
        assert await page.locator("h1").count() == 1

        await page.click(".site-header form[action='/logout'] button[type=submit]")
        # Out of Keycloak's session too: its end-session endpoint sends the browser back.
        await page.wait_for_url(f"{dashboard}/signed-out")
        assert await page.locator(".staff-user").count() == 0
        assert await page.locator("form[action='/logout']").count() == 0
        assert await page.locator("main a[href='/login']").count() == 1

        # The next visit asks for the password again: no silent sign-in.
        await page.goto(f"{dashboard}/")
        assert page.url.startswith(issuer), page.url
        await page.wait_for_selector("#kc-form-login #password")
    finally:
        await context.close()


# -- b. triage with the keyboard alone --------------------------------------------------------


async def test_an_analyst_triages_a_case_with_the_keyboard_alone(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await case_in_review(settings, sessions)
    context = await new_context(browser, 1280)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "anna.analityk")
        # From the top of the inbox: the "Unassigned" tab, then only this case there.
        await page.goto(f"{dashboard}/")
        await tab_to(page, ".tabs a[href='/?tab=unassigned']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{dashboard}/?tab=unassigned")
        await tab_to(page, "#filter-case-number")
        await page.keyboard.type(case.case_number)
        await page.keyboard.press("Enter")
        await page.wait_for_url(
            lambda url: url.startswith(f"{dashboard}/?tab=unassigned&") and "case_number" in url
        )
        claim = f"form[action='/tasks/{case.analyst_task_id}/claim'] button[type=submit]"
        await tab_to(page, f"[data-live-region=inbox] {claim}")
        await page.keyboard.press("Enter")

        await page.wait_for_url(f"{dashboard}/tasks/{case.analyst_task_id}?notice=claimed")
        notice = await page.inner_text(".notice[role=status]")
        assert notice in ("The task is yours now.", "Zadanie jest teraz Twoje."), notice
        approve = await page.evaluate(
            """() => [...document.querySelectorAll('input[type=radio][name=decision]')]
                .find(input => ['Przyznaj', 'Approve'].includes(
                    document.querySelector(`label[for="${input.id}"]`).textContent.trim()))
                .id"""
        )
        await tab_to(page, f"#{approve}")
        await page.keyboard.press("Space")
        assert await page.is_checked(f"#{approve}")
        await tab_to(page, "#field-decisionReason")
        await page.keyboard.type("Dochody wystarczające, historia bez zaległości.")
        # Past the button, and back to it.
        await tab_to(page, "button[name=action][value=save]")
        await tab_to(page, "#field-send", backwards=True)
        await page.keyboard.press("Enter")

        await page.wait_for_url(f"{dashboard}/?notice=completed")
        notice = await page.inner_text(".notice[role=status]")
        assert "completed" in notice or "zakończone" in notice.lower(), notice
    finally:
        await context.close()

    async def approved() -> str | None:
        status = await case_status(sessions, case.case_id)
        return status if status == "approved" else None

    assert await eventually(approved, within=60) == "approved"


# -- c. live updates ----------------------------------------------------------------------------


async def test_a_case_reaching_review_appears_in_an_open_inbox_without_a_reload(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    context = await new_context(browser, 1280)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "adam.analityk")
        # The page opens its stream (static/js/live-updates.js) before anything happens.
        async with page.expect_request(lambda request: "/events/" in request.url):
            await page.goto(f"{dashboard}{UNASSIGNED_NEWEST}")
        await page.evaluate("window.__sameDocument = 'still here'")

        case = await case_in_review(settings, sessions)

        await page.wait_for_function(
            """number => document.querySelector('[data-live-region=inbox]')
                .textContent.includes(number)""",
            arg=case.case_number,
            timeout=60_000,
        )
        assert await page.evaluate("window.__sameDocument") == "still here", "the page reloaded"
        assert page.url == f"{dashboard}{UNASSIGNED_NEWEST}"
        row = page.locator("[data-live-region=inbox] tr", has_text=case.case_number)
        assert (
            await row.locator(f"form[action='/tasks/{case.analyst_task_id}/claim'] button").count()
            == 1
        )
    finally:
        await context.close()


# -- d. axe-core and 320 px on every page ------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reviewed_by_magda(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> CaseInReview:
    """A case whose review the manager takes (in the first test that needs it)."""
    return await case_in_review(settings, sessions)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def waiting(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CaseInReview:
    """A case whose review nobody has taken."""
    return await case_in_review(settings, sessions)


async def checked_page(page: Page, url: str, width: int, name: str, status: int = 200) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == status, (name, response and response.status)
    await check(page, width, name)


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_staff_page_passes_axe(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    reviewed_by_magda: CaseInReview,
    waiting: CaseInReview,
    width: int,
) -> None:
    issuer = staff_settings.staff_oidc_issuer
    mine = reviewed_by_magda
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, issuer, "magda.kierownik")
        task_path = f"{dashboard}/tasks/{mine.analyst_task_id}"
        await page.goto(task_path)
        if await page.locator(f"form[action='/tasks/{mine.analyst_task_id}/claim']").count():
            await page.click(f"form[action='/tasks/{mine.analyst_task_id}/claim'] button")
            await page.wait_for_url(f"{task_path}?notice=claimed")
            await check(page, width, "task, just taken")

        for tab in ("mine", "unassigned", "all"):
            await checked_page(page, f"{dashboard}/?tab={tab}", width, f"inbox, {tab}")
            assert await page.locator("[data-live-region=inbox] tbody tr").count() > 0, tab
        await page.goto(f"{dashboard}/?tab=mine")
        assert mine.case_number in await page.inner_text("[data-live-region=inbox]")
        await page.goto(f"{dashboard}{UNASSIGNED_NEWEST}")
        assert waiting.case_number in await page.inner_text("[data-live-region=inbox]")

        await page.click(".saved-filters summary")
        await check(page, width, "inbox, saved filters open")
        await page.fill("#filter-name", f"Nieprzydzielone, najnowsze ({width} px)")
        await page.click(".saved-filters form[action='/filters'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}/?notice=saved-filter")
        await page.click(".saved-filters summary")
        assert await page.locator(".saved-filters li").count() > 0
        await check(page, width, "inbox, a filter saved")

        await checked_page(page, task_path, width, "task with its form")
        assert await page.locator("#field-send").count() == 1
        await page.click("#field-send")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "task sent empty")

        await checked_page(page, f"{dashboard}/cases/", width, "cases, no search yet")
        await page.click("form[action='/cases/'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}/cases/?*")
        assert await page.locator("table.data-table tbody tr").count() > 0
        await check(page, width, "cases found")
        await page.fill("#search-customer", "12345")
        await page.click("form[action='/cases/'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "cases, a bad customer number")

        await checked_page(page, f"{dashboard}/cases/{mine.case_id}", width, "case")
        assert await page.locator("form[action^='/documents/'][action$='/review']").count() > 0
        await page.fill("#note-text", f"Klient prosi o telefon po 16:00 ({width} px).")
        await page.click("form.note-form button[type=submit]")
        await page.wait_for_url(f"{dashboard}/cases/{mine.case_id}?notice=note-added#notes")
        assert await page.locator(".note__text").count() > 0
        await check(page, width, "case with a note")
        await page.fill("#note-text", "   ")
        await page.click("form.note-form button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "note sent empty")
        await page.goto(f"{dashboard}/cases/{mine.case_id}")
        await page.click("a[href^='/customers/']")
        await page.wait_for_url(f"{dashboard}/customers/*")
        assert mine.case_number in await page.inner_text("table.data-table")
        await check(page, width, "customer card")
    finally:
        await context.close()

    # Another member of staff: a task outside her groups is a 404, like one that is not there.
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, issuer, "celina.konsultant")
        await checked_page(
            page, f"{dashboard}/tasks/{waiting.analyst_task_id}", width, "404 task", status=404
        )
        await checked_page(page, f"{dashboard}/?tab=unassigned", width, "inbox, nothing here")
        await page.click(".site-header form[action='/logout'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}/signed-out")
        await check(page, width, "signed out")
        await checked_page(
            page, f"{dashboard}/auth/callback?error=access_denied", width, "sign-in failed", 400
        )
    finally:
        await context.close()


# -- e. contacting participants: the case page's section and its forms ---------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def contacted(settings: Settings) -> ContactCase:
    """A case to contact, its borrower's proof of income uploaded."""
    case = await contact_case(settings)
    async with AsyncTestClient(panel_app(settings)) as client:
        await participant_sign_in(client, case.borrower_id)
        income = next(
            t for t in await open_tasks(client, 3) if t["elementId"] == credit.ELEMENT_TASK_INCOME
        )
        assert (await upload_document(client, income["id"], "incomeProof")).status_code == 201
    return case


@pytest.mark.parametrize("width", WIDTHS)
async def test_contacting_participants_passes_axe(
    dashboard: str,
    panel: str,
    browser: Browser,
    staff_settings: Settings,
    settings: Settings,
    contacted: ContactCase,
    width: int,
) -> None:
    case = contacted
    # The co-borrower's sign-in locked by a wrong code, so the page offers to unlock it.
    phone, fragment = case.co_borrower["phone"], case.co_borrower["pesel"][-4:]
    code = code_in((await messages_to(settings.redis_url, phone))[-1]["text"])
    strict = msgspec.structs.replace(settings, login_max_failures=1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert (await invitation_login(strict, case.case_number, fragment, wrong)).status_code == 423
    mails = len(await mails_to(settings.redis_url, case.borrower["email"]))

    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "magda.kierownik")
        await checked_page(page, f"{dashboard}{case.path()}", width, "case, contacting")
        assert await page.locator("#contact form[action$='/invitation']").count() == 2
        assert await page.locator("#contact form[action$='/unlock']").count() == 1

        message = f"{dashboard}{case.path(case.borrower_id, 'message')}"
        await checked_page(page, message, width, "message form")
        await page.check("#message-own")
        await page.click("main form[action$='/message'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "message form, no text written")
        await page.check("#channel-email")
        await page.check("#message-reminder")
        await page.click("main form[action$='/message'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}{case.path()}?contact=email-sent#contact")
        await check(page, width, "case, e-mail sent")

        await page.click("#contact form[action$='/unlock'] button")
        await page.wait_for_url(f"{dashboard}{case.path()}?contact=unlocked#contact")
        assert await page.locator("#contact form[action$='/unlock']").count() == 0
        await check(page, width, "case, sign-in unlocked")

        document = f"{dashboard}{case.path(case.borrower_id, 'document')}"
        await checked_page(page, document, width, "document form")
        await page.click("main form[action$='/document'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "document form, nothing chosen")
        await page.check("#document-0")
        await page.click("main form[action$='/document'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}{case.path()}?contact=document-sent#contact")
        await check(page, width, "case, document sent")
    finally:
        await context.close()

    async def both_arrived() -> bool:
        return len(await mails_to(settings.redis_url, case.borrower["email"])) >= mails + 2

    assert await eventually(both_arrived)
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await checked_page(page, f"{panel}/dev/outbox", width, "demo outbox with e-mail")
        assert await page.locator(".mail a[href*='/attachments/']").count() > 0
    finally:
        await context.close()


# -- f. appointments and the calendar ----------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
async def test_booking_moving_and_the_calendar_pass_axe(
    dashboard: str, browser: Browser, staff_settings: Settings, settings: Settings, width: int
) -> None:
    opened = await open_case_via_channel(settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    case_id = opened["caseId"]
    day = days_ahead(3)
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "magda.kierownik")
        await checked_page(
            page, f"{dashboard}/cases/{case_id}/appointments/new", width, "booking form"
        )
        await page.fill("#field-date", day)
        await page.click("main form[action$='/appointments/'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary li").count() >= 2
        await check(page, width, "booking form with errors")
        await page.check("#field-kind")
        await page.fill("#field-time", "10:00")
        await page.fill("#field-place", "ul. Marszałkowska 142, 00-061 Warszawa")
        await page.fill("#field-subject", f"Podpisanie umowy ({width} px)")
        await page.click("main form[action$='/appointments/'] button[type=submit]")
        await page.wait_for_url(f"{dashboard}/cases/{case_id}?appointment=booked#appointments")
        assert await page.locator("#appointments .appointment").count() >= 1
        await check(page, width, "case with an appointment")

        await page.click("#appointments a[href$='/reschedule']")
        await page.wait_for_url(f"{dashboard}/cases/{case_id}/appointments/*/reschedule")
        await check(page, width, "moving an appointment")
        await page.fill("#field-subject", "")
        await page.click("main form[action$='/reschedule'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "moving an appointment, with errors")
        await page.goto(f"{dashboard}/cases/{case_id}#appointments")
        await page.click("#appointments a[href$='/cancel']")
        await page.wait_for_url(f"{dashboard}/cases/{case_id}/appointments/*/cancel")
        await check(page, width, "cancelling an appointment")

        week = f"{dashboard}/calendar/?view=week&week={day}"
        await checked_page(page, week, width, "calendar, a week")
        await checked_page(page, f"{week}&who=team", width, "calendar, the team's week")
        assert await page.locator(".calendar__entry--appointment").count() >= 1
        await checked_page(
            page, f"{dashboard}/calendar/?view=agenda&who=team", width, "calendar, agenda"
        )
        assert await page.locator(".calendar__day").count() >= 1
        await checked_page(
            page, f"{dashboard}/calendar/?view=agenda", width, "calendar, own agenda"
        )
    finally:
        await context.close()


# -- g. assisted mode: completing a participant's task with them on the phone ------------------


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_assisted_mode_pages_pass_axe(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    width: int,
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    phone = waiting.co_borrower["phone"]
    start = f"{dashboard}{waiting.assisted('task-questionnaire')}"
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "celina.konsultant")
        await checked_page(
            page, f"{dashboard}{waiting.page}", width, "case, as a call-centre agent"
        )
        await page.click(f"#assisted a[href='{waiting.assisted('task-questionnaire')}']")
        await page.wait_for_url(start)
        await check(page, width, "assisted, before the code")

        seen = len(await messages_to(settings.redis_url, phone))
        await page.click("form[action$='/assisted/code'] button[type=submit]")
        await page.wait_for_url(f"{start}?code=sent#code")
        await check(page, width, "assisted, code sent")
        code = code_in(await next_message(settings.redis_url, phone, seen))

        await page.fill("#code", f"{(int(code) + 1) % 10**6:06d}")
        await page.click("form[action$='/assisted/presence'] button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary a[href='#code']").count() == 1
        await check(page, width, "assisted, a wrong code")

        await page.fill("#code", code)
        await page.click("form[action$='/assisted/presence'] button[type=submit]")
        await page.wait_for_url(f"{start}/form")
        await check(page, width, "assisted form")
        await page.click("#field-send")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "assisted form sent empty")

        await page.check("input[name=relationshipToBorrower][value=partner]")
        await page.check("input[name=maritalStatus][value=married]")
        await page.fill("#field-dependants", "1")
        await page.click("#field-send")
        await page.wait_for_url(f"{dashboard}{waiting.page}?assisted=completed#assisted")
        assert await page.locator("#assisted .notice[role=status]").count() == 1
        await check(page, width, "case, a task completed on the phone")

        consents = f"{dashboard}{waiting.assisted('task-consents')}"
        await checked_page(page, consents, width, "assisted, a task not for the phone")
        assert await page.locator("#code").count() == 0
    finally:
        await context.close()


# -- f. failed automatic steps (incidents): axe at both widths, and the keyboard alone ----------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def at_the_bureau(
    stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[CaseAtBureau, int]]:
    """A case whose credit bureau keeps failing: an open incident the pages show."""
    case = await case_at_the_bureau(settings, stack.bureau, "500")
    incident = await open_incident(sessions, case.case_id)
    yield case, incident.incident_key
    stack.bureau.set_mode(None, reference=str(case.case_id))


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_failed_step_pages_pass_axe(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    at_the_bureau: tuple[CaseAtBureau, int],
    width: int,
) -> None:
    issuer = staff_settings.staff_oidc_issuer
    case, incident_key = at_the_bureau
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, issuer, "magda.kierownik")
        await checked_page(page, f"{dashboard}/incidents/", width, "failed steps")
        assert await page.locator(f"tr[data-incident='{incident_key}']").count() == 1
        await page.click(f".incident-group:has(tr[data-incident='{incident_key}']) form button")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "failed steps, a group retried without a reason")

        await checked_page(page, f"{dashboard}/incidents/{incident_key}", width, "failed step")
        await page.fill("#retry-reason", f"Poprawiam zmienne ({width} px).")
        await page.fill("#retry-variables", '{"bureauResult": ')
        await page.click("form.retry-form button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator("[data-step=variables][data-outcome=failed]").count() == 1
        await check(page, width, "failed step, its retry stopped")

        await checked_page(page, f"{dashboard}/cases/{case.case_id}", width, "case, a failed step")
        await page.click(f"[data-incident='{incident_key}'] details summary")
        assert await page.is_visible(f"#case-retry-{incident_key}-reason")
        await check(page, width, "case, the retry of a failed step open")
    finally:
        await context.close()

    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, issuer, "celina.konsultant")
        await checked_page(page, f"{dashboard}/incidents/", width, "failed steps refused", 403)
    finally:
        await context.close()


async def test_an_operator_retries_a_failed_step_with_the_keyboard_alone(
    dashboard: str,
    browser: Browser,
    stack: Stack,
    staff_settings: Settings,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await case_at_the_bureau(settings, stack.bureau, "500")
    incident = await open_incident(sessions, case.case_id)
    stack.bureau.set_mode("ok", reference=str(case.case_id))
    context = await new_context(browser, 1280)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "olek.operator")
        await tab_to(page, ".site-nav a[href='/incidents/']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{dashboard}/incidents/")
        await tab_to(page, f"tr[data-incident='{incident.incident_key}'] a[href^='/incidents/']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(
            lambda url: url.startswith(f"{dashboard}/incidents/{incident.incident_key}?")
        )
        await tab_to(page, "#retry-reason")
        await page.keyboard.type("Biuro kredytowe znów odpowiada.")
        await tab_to(page, "#retry-retries")
        await page.keyboard.press("Control+A")
        await page.keyboard.type("2")
        await tab_to(page, "form.retry-form button[type=submit]")
        await page.keyboard.press("Enter")
        await page.wait_for_url(
            lambda url: url == f"{dashboard}/incidents/?notice=incident-retried"
        )
        assert await page.locator(".notice[role=status]").count() == 1
        assert await page.locator(f"tr[data-incident='{incident.incident_key}']").count() == 0
    finally:
        await context.close()
        stack.bureau.set_mode(None, reference=str(case.case_id))
    await analyst_task(sessions, case.case_id)


# -- g. the chat: the queue, a conversation with the case beside it, canned answers -----------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def chatting(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> tuple[ChatCase, uuid.UUID]:
    """A question about the income step, with a canned answer in the participant's language."""
    case = await chat_case(settings)
    conversation_id = await ask(
        sessions, settings, case, "Jakie zaświadczenie o dochodach mam przesłać?"
    )
    async with sessions() as session:
        session.add(
            CannedAnswer(
                case_type=credit.CASE_TYPE_CREDIT,
                locale="pl",
                title="Zaświadczenie o dochodach",
                text="Wystarczy zaświadczenie o zarobkach od pracodawcy.",
                updated_by="magda.kierownik",
            )
        )
        await session.commit()
    return case, conversation_id


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_conversation_pages_pass_axe(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    chatting: tuple[ChatCase, uuid.UUID],
    width: int,
) -> None:
    case, conversation_id = chatting
    thread = f"{dashboard}/conversations/{conversation_id}"
    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "magda.kierownik")
        await checked_page(page, f"{dashboard}/conversations?tab=all", width, "conversations")
        assert await page.locator(f"tr[data-conversation='{conversation_id}']").count() == 1
        await checked_page(page, thread, width, "conversation")
        assert await page.locator("#canned-answer option").count() >= 2
        assert await page.locator(".work-layout__case a[href^='/documents/']").count() == 1
        await page.select_option("#canned-answer", label="Zaświadczenie o dochodach")
        assert "zaświadczenie o zarobkach" in await page.input_value("#reply-text")
        await check(page, width, "conversation, a canned answer chosen")
        await page.fill("#reply-text", "")
        await page.click("#reply-send")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary a[href='#reply-text']").count() == 1
        await check(page, width, "conversation, an empty answer")
        await page.fill("#hand-over-username", "nikt.taki")
        await page.click("form.hand-over button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary a[href='#hand-over-username']").count() == 1
        await check(page, width, "conversation, an unknown colleague")

        canned = f"{dashboard}/conversations/canned-answers"
        await checked_page(page, canned, width, "canned answers")
        await page.click("form.answer-form button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, "canned answers, an empty answer")
        await page.click(".canned-answer a[href^='/conversations/canned-answers/']")
        await page.wait_for_load_state()
        await check(page, width, "canned answer, changing it")
        await checked_page(page, f"{dashboard}/cases/{case.case_id}", width, "case, conversations")
        assert await page.locator(f"#conversations a[href$='{conversation_id}']").count() == 1
    finally:
        await context.close()

    context = await new_context(browser, width, axe=True)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "anna.analityk")
        await checked_page(
            page, f"{dashboard}/conversations/canned-answers", width, "canned refused", 403
        )
    finally:
        await context.close()


async def test_an_analyst_takes_and_answers_a_conversation_with_the_keyboard_alone(
    dashboard: str,
    browser: Browser,
    staff_settings: Settings,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await chat_case(settings)
    conversation_id = await ask(sessions, settings, case, "Czy mogę wysłać skan zaświadczenia?")
    thread = f"{dashboard}/conversations/{conversation_id}"
    context = await new_context(browser, 1280)
    page = await context.new_page()
    try:
        await sign_in(page, dashboard, staff_settings.staff_oidc_issuer, "anna.analityk")
        await tab_to(page, ".site-nav a[href='/conversations']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{dashboard}/conversations")
        await tab_to(page, f"tr[data-conversation='{conversation_id}'] th a")
        await page.keyboard.press("Enter")
        await page.wait_for_url(thread)
        await tab_to(page, "#take")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{thread}?notice=taken")
        assert await page.locator(".notice[role=status]").count() == 1
        await tab_to(page, "#reply-text")
        await page.keyboard.type("Tak, skan w formacie PDF wystarczy.")
        await tab_to(page, "#reply-send")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{thread}?notice=sent")
        assert await page.locator(".chat-message--staff").count() == 1

        # The participant's next message shows without a reload.
        write_soon(settings, case.actor, conversation_id, "Dziękuję, wyślę dziś.").join()
        await page.wait_for_selector(
            ".chat-message--participant:has-text('Dziękuję, wyślę dziś.')", timeout=15000
        )
    finally:
        await context.close()
