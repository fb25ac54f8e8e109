"""WCAG 2.2 A/AA in a real browser: axe-core finds nothing on any page, at 1280 and 320 px.

The BFF runs as its own process (uvicorn) against the session's real services; Debian's
Chromium is driven by Playwright, and axe-core comes from npm.
"""

from __future__ import annotations

import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN
from devtools.ports import free_port
from devtools.reaper import spawn_watched, terminate_watched
from panel_core.cases import closure
from panel_core.cases.case_types import AfterClosure
from panel_core.db.models import Case
from panel_core.forms import apply_list_action
from panel_core.settings import Settings
from panel_core.tasks.document_pdf import render_pdf
from panel_core.tasks.signing import SignableDocument
from panel_web.pages import STATIC_DIR
from tests import credit
from tests.appointment_helpers import book_directly, days_ahead
from tests.conftest import REPO_ROOT, Stack, settings_env
from tests.helpers import PDF_BYTES, person
from tests.sms_inbox import code_in, next_message
from tests.test_form_components import (
    VARIABLES,
    every_form,
    render_task_page,
    submitted_with_errors,
)
from tests.test_signed_document import credit_page, form

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
WIDTHS = (1280, 320)


@contextmanager
def serving(factory: str, port: int, settings: Settings, log: Path) -> Iterator[str]:
    """One of the web apps (``bff.app:app_factory``, say) as its own uvicorn process."""
    with log.open("wb") as out:
        # Registered with the reaper: a run killed outright does not leave it behind.
        server = spawn_watched(
            [sys.executable, "-m", "uvicorn", "--factory", factory,
             "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers"],
            cwd=REPO_ROOT, env=settings_env(settings), stdout=out,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):  # noqa: S310 - loopback
                    break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield url
    finally:
        terminate_watched(server, timeout=15)


@pytest.fixture(scope="module")
def panel(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("bff") / "bff.log"
    with serving("bff.app:app_factory", free_port(), stack.settings, log) as url:
        yield url


@pytest.fixture(scope="module")
def installed() -> None:
    assert Path(CHROMIUM).exists(), "Chromium is installed by ./dev setup (apt package chromium)"
    assert AXE.exists(), "axe-core is installed by ./dev setup (npm ci)"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(installed: None) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        await launched.close()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    # axe really looked at the page: rules ran and passed, not just an empty verdict.
    assert len(result["passes"]) > 10, result["passes"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


async def check(page: Page, width: int, name: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"{name} at {width}px: {violations}"
    if width == 320:
        scroll_width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll_width <= 320, f"{name} scrolls sideways at 320px ({scroll_width}px)"


async def open_case(panel: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{panel}/api/channel/cases",
            json={
                "caseType": credit.CASE_TYPE_CREDIT,
                "participants": [person(credit.ROLE_PRIMARY_BORROWER, 0)],
            },
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


ERROR_PREFIX = {"pl": "Błąd:", "en": "Error:"}


async def in_language(context: BrowserContext, panel: str, locale: str) -> None:
    """Choose the language as a person does: through the switch every page links to."""
    page = await context.new_page()
    await page.goto(f"{panel}/login")
    if locale != "pl":
        await page.click(f".language-switch a[lang={locale}]")
        await page.wait_for_url(f"{panel}/login")
    assert await page.get_attribute("html", "lang") == locale
    await page.close()


async def wait_for_task_links(page: Page, count: int) -> None:
    deadline = time.monotonic() + 60
    while await page.locator(".task-list[data-state=open] a").count() < count:
        assert time.monotonic() < deadline, "the participant's tasks did not appear"
        await page.wait_for_timeout(500)
        await page.reload()


@pytest.mark.parametrize("locale", ["pl", "en"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_every_page_passes_axe(
    panel: str, browser: Browser, stack: Stack, width: int, locale: str
) -> None:
    case = await open_case(panel)
    # bypass_csp lets axe-core in; the page itself runs under its normal policy otherwise.
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    await in_language(context, panel, locale)
    page = await context.new_page()
    where = f"{locale}: "
    try:
        await page.goto(f"{panel}/login")
        await check(page, width, where + "login")
        await page.click("form[action='/login'] button[type=submit]")
        assert (await page.title()).startswith(ERROR_PREFIX[locale])
        await check(page, width, where + "login with errors")
        await page.fill("#case", "KR-2026-00000000")
        await page.fill("#fragment", "1234")
        await page.click("form[action='/login'] button[type=submit]")
        await page.wait_for_url(f"{panel}/login/code")
        await check(page, width, where + "code")

        await page.goto(
            f"{panel}/dev/sign-in?participant={case['participants'][0]['participantId']}"
        )
        await check(page, width, where + "demo sign-in")
        await page.click("form[action='/dev/sign-in'] button[type=submit]")
        await page.wait_for_url(f"{panel}/case/")
        await wait_for_task_links(page, 3)
        await check(page, width, where + "case overview")
        await page.goto(f"{panel}/tasks/")
        await check(page, width, where + "task list")
        links = await page.locator(".task-list[data-state=open] a").all()
        hrefs = [str(await link.get_attribute("href")) for link in links]
        for href in hrefs:
            await page.goto(panel + href)
            name = await page.inner_text("h1")
            await check(page, width, where + name)
            await page.click("form[action^='/tasks/'] button[type=submit]:not([name])")
            assert (await page.title()).startswith(ERROR_PREFIX[locale])
            await check(page, width, where + name + " with errors")
            if await page.locator("input[type=file]").count():
                await page.set_input_files(
                    "input[type=file]",
                    files=[{"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"hi"}],
                )
                await page.click("button[name=action][value=upload]")
                # The page's upload script sends the form and shows the answer when it comes.
                await page.wait_for_selector(".error-message >> text=notes.pdf")
                await page.wait_for_load_state()
                await check(page, width, where + name + " with a refused upload")
                await page.set_input_files(
                    "input[type=file]",
                    files=[
                        {"name": "proof.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}
                    ],
                )
                await page.click("button[name=action][value=upload]")
                await page.wait_for_url(f"{panel}/tasks/*?saved=1")
                await check(page, width, where + name + " with an uploaded file")
        await page.goto(f"{panel}/dev/outbox")
        await check(page, width, where + "SMS outbox")
    finally:
        await context.close()


@pytest.fixture(scope="module")
def branded_panel(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    branded = msgspec.structs.replace(
        stack.settings, branding_file=str(REPO_ROOT / "branding" / "example" / "branding.json")
    )
    log = tmp_path_factory.mktemp("bff-branded") / "bff.log"
    with serving("bff.app:app_factory", free_port(), branded, log) as url:
        yield url


@pytest.mark.parametrize("width", WIDTHS)
async def test_a_banks_branded_pages_pass_axe_open_and_after_closure(
    branded_panel: str,
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    width: int,
) -> None:
    case = await open_case(branded_panel)
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    try:
        await page.goto(f"{branded_panel}/login")
        # The bank's theme is what the page wears: its stylesheet is applied, not only linked.
        brand = await page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--panel-color-brand')"
        )
        assert brand.strip() == "#5a1e5c"
        await check(page, width, "branded login")
        participant = case["participants"][0]["participantId"]
        await page.goto(f"{branded_panel}/dev/sign-in?participant={participant}")
        await page.click("form[action='/dev/sign-in'] button[type=submit]")
        await page.wait_for_url(f"{branded_panel}/case/")
        await check(page, width, "branded case overview")
        async with sessions() as session:
            row = await session.get(Case, uuid.UUID(case["caseId"]))
            assert row is not None
            closure.close(
                row,
                AfterClosure(access_days=30, shows="documents", purge_after_days=90),
                datetime.now(UTC),
            )
            await session.commit()
        await page.reload()
        assert await page.locator("p.notice[role=note]").count() == 1
        await check(page, width, "branded overview of a closed case")
    finally:
        await context.close()


async def show(page: Page, html: str) -> None:
    """Open a rendered page as if the panel served it, its stylesheets and scripts too."""

    async def serve(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path.startswith("/static/"):
            file = STATIC_DIR / path.removeprefix("/static/")
            kind = "text/css" if file.suffix == ".css" else "text/javascript"
            await route.fulfill(body=file.read_bytes(), content_type=kind)
        else:
            await route.fulfill(body=html, content_type="text/html; charset=utf-8")

    await page.route("http://panel.test/**", serve)
    await page.goto("http://panel.test/tasks/1")


@pytest.mark.parametrize("locale", ["pl", "en"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_every_form_component_passes_axe(browser: Browser, width: int, locale: str) -> None:
    """The test form with every component type: fresh, with errors, and with a second row.

    Rendered by the panel's own templates; no engine is needed for this one.
    """
    sent, errors = submitted_with_errors()
    two_rows = apply_list_action(every_form(), sent, "add:owners")
    pages = {
        "fresh": render_task_page(every_form(), variables=VARIABLES, locale=locale),
        "with errors": render_task_page(
            every_form(), values=sent, errors=errors, variables=VARIABLES, locale=locale
        ),
        "with a row added": render_task_page(
            every_form(), values=two_rows, variables=VARIABLES, locale=locale
        ),
    }
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    try:
        for name, html in pages.items():
            await show(page, html)
            await check(page, width, f"{locale}: every component, {name}")
    finally:
        await context.close()


@pytest.mark.parametrize("locale", ["pl", "en"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_the_document_to_sign_passes_axe(browser: Browser, width: int, locale: str) -> None:
    """The signing task with its document: headings, answers, consents and the appendix."""
    document = credit_page(locale)
    signing = SignableDocument(document, render_pdf(document))
    html = render_task_page(form(credit.FORM_SIGNATURE), locale=locale, signing=signing)
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    try:
        await show(page, html)
        await check(page, width, f"{locale}: the document to sign")
    finally:
        await context.close()


async def test_axe_does_find_a_violation_when_there_is_one(panel: str, browser: Browser) -> None:
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    try:
        await page.goto(f"{panel}/login")
        await page.evaluate("document.querySelector('label[for=case]').remove()")
        ids = [v["id"] for v in await axe_violations(page)]
    finally:
        await context.close()
    assert "label" in ids


async def tab_to(page: Page, selector: str, limit: int = 25) -> None:
    """Press Tab until the element has focus, checking that focus is visible at every stop."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        visible = await page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || el === document.body) return true;
                const style = getComputedStyle(el);
                return style.outlineStyle !== 'none' || style.boxShadow !== 'none';
            }"""
        )
        assert visible, await page.evaluate("document.activeElement.outerHTML")
        if await page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_a_participant_signs_in_and_completes_a_task_with_the_keyboard_alone(
    panel: str, browser: Browser, stack: Stack
) -> None:
    who = person(credit.ROLE_PRIMARY_BORROWER, 0)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{panel}/api/channel/cases",
            json={"caseType": credit.CASE_TYPE_CREDIT, "participants": [who]},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    case = response.json()
    await next_message(stack.settings.redis_url, who["phone"], 0, within=60)  # invitation
    context = await browser.new_context(viewport={"width": 375, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(f"{panel}/login")
        await tab_to(page, "#case")
        await page.keyboard.type(case["caseNumber"])
        await tab_to(page, "#fragment")
        await page.keyboard.type(who["pesel"][-4:])
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{panel}/login/code")
        code = code_in(await next_message(stack.settings.redis_url, who["phone"], 1))
        await tab_to(page, "#code")
        await page.keyboard.type(code)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{panel}/case/")
        await wait_for_task_links(page, 3)
        await tab_to(page, "a:is([href^='/tasks/'])")
        while (await page.evaluate("document.activeElement.textContent")) != "Złóż zgody":
            await tab_to(page, "a:is([href^='/tasks/'])")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{panel}/tasks/*-*")
        await tab_to(page, "#field-consentCreditCheck")
        await page.keyboard.press("Space")
        await tab_to(page, "#field-consentDataProcessing")
        await page.keyboard.press("Space")
        await tab_to(page, "form[action^='/tasks/'] button[type=submit]")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{panel}/case/")
        # Listed as sent, and no longer a link to a form.
        assert (
            await page.locator(".task-list:not([data-state=open]) >> text=Złóż zgody").count() == 1
        )
        assert await page.locator("a:has-text('Złóż zgody')").count() == 0
    finally:
        await context.close()


@pytest.mark.parametrize("locale", ["pl", "en"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_a_participants_appointment_and_asking_to_move_it_pass_axe(
    panel: str,
    browser: Browser,
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    width: int,
    locale: str,
) -> None:
    case = await open_case(panel)
    participant = case["participants"][0]["participantId"]
    appointment = await book_directly(
        stack.settings, sessions, uuid.UUID(case["caseId"]), participant, days_ahead(3), "10:00"
    )
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    await in_language(context, panel, locale)
    page = await context.new_page()
    where = f"{locale}: "
    try:
        await page.goto(f"{panel}/dev/sign-in?participant={participant}")
        await page.click("form[action='/dev/sign-in'] button[type=submit]")
        await page.wait_for_url(f"{panel}/case/")
        assert await page.locator("#appointments .appointment").count() == 1
        await check(page, width, where + "overview with an appointment")
        await page.click(f"a[href='/appointments/{appointment.id}/move']")
        await page.wait_for_url(f"{panel}/appointments/{appointment.id}/move")
        await check(page, width, where + "asking to move an appointment")
        await page.click("main form button[type=submit]")
        await page.wait_for_load_state()
        assert (await page.title()).startswith(ERROR_PREFIX[locale])
        await check(page, width, where + "asking to move it, nothing written")
        await page.fill("#field-message", "W tym tygodniu pracuję rano.")
        await page.fill("#field-preferred", "Popołudnia po 16:00")
        await page.click("main form button[type=submit]")
        await page.wait_for_url(f"{panel}/appointments/{appointment.id}/move?sent=1")
        await check(page, width, where + "asked to move it")
        await page.goto(f"{panel}/case/")
        assert await page.locator(f"a[href='/appointments/{appointment.id}/move']").count() == 0
        await check(page, width, where + "overview, a move asked for")
    finally:
        await context.close()
