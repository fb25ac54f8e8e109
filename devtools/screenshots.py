"""Screenshots of every participant page and the staff dashboard at 375 and 1280 px, for
the docs.

``python -m devtools screenshots`` starts the whole stack like the demo does, walks through
the pages in Debian's Chromium and writes ``docs/screenshots/<page>-<width>.png``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import tempfile
import time
from pathlib import Path

import pikepdf
from playwright.async_api import FilePayload, Page, async_playwright
from redis.asyncio import Redis

from devtools.demo import DEMO_CASE_TYPE, REPO_ROOT, DemoStack, running_stack
from devtools.form_preview import write_preview
from devtools.keycloak import DEMO_PASSWORD
from devtools.ports import free_port

OUTPUT = REPO_ROOT / "docs" / "screenshots"
WIDTHS = (375, 1280)
CHROMIUM = "/usr/bin/chromium"
# The reference form with every component type the panel supports, and the variables it reads.
GALLERY_FORM = REPO_ROOT / "docs" / "forms" / "every-component.form"
GALLERY_VARIABLES = REPO_ROOT / "docs" / "forms" / "every-component.variables.json"


async def _latest_code(redis_url: str, phone: str, seen: int) -> str:
    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            messages = [json.loads(raw) for raw in await redis.lrange("dev:sms-outbox", 0, -1)]
            mine = [m for m in messages if m["to"] == phone]
            if len(mine) > seen:
                match = re.search(r"(?<![\d-])(\d{6})(?!\d)", mine[0]["text"])
                if match:
                    return match.group(1)
            await asyncio.sleep(0.3)
    finally:
        await redis.aclose()
    raise RuntimeError(f"no SMS reached {phone}")


async def _shoot(page: Page, name: str, width: int, *, record: bool = True) -> list[Path]:
    if not record:
        return []
    path = OUTPUT / f"{name}-{width}.png"
    await page.screenshot(path=str(path), full_page=True)
    return [path]


def _proof_of_income() -> bytes:
    """A real one-page PDF: the panel parses every upload whole and refuses fakes."""
    document = pikepdf.new()
    document.add_blank_page()
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


SEND = "form[action^='/tasks/'] button[type=submit]:not([name]):not([formaction])"


async def _sms_count(redis_url: str, phone: str) -> int:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        return sum(phone in m for m in await redis.lrange("dev:sms-outbox", 0, -1))
    finally:
        await redis.aclose()


async def _open_task(page: Page, panel: str, name: str) -> None:
    deadline = time.monotonic() + 60
    link = page.locator(".task-list[data-state=open] a", has_text=name)
    while not await link.count() and time.monotonic() < deadline:
        await page.wait_for_timeout(500)
        await page.goto(f"{panel}/case/")
    await link.click()
    await page.wait_for_url(re.compile(r".*/tasks/[0-9a-f-]+"))


async def _walk_case(
    page: Page, stack: DemoStack, width: int, *, co_borrowers: int = 1, record: bool = True
) -> tuple[str, list[Path]]:
    """One participant's whole share, in Polish, photographing every page on the way.

    Returns the case number. With no co-borrowers the case goes on to the bank's review.
    """
    case_text = stack.open_case(
        DEMO_CASE_TYPE, ["primary-borrower"] + ["co-borrower"] * co_borrowers
    )
    case_number = re.search(r"case number: (\S+)", case_text)
    primary = re.search(
        r"participant primary-borrower: \S+ \(PESEL ending (\d+), phone (\S+),", case_text
    )
    assert case_number and primary, case_text
    fragment, phone = primary.group(1), primary.group(2)
    panel = stack.panel
    shots = []
    # The invitation first, so the login code is not mistaken for it.
    await _latest_code(stack.redis_url, phone, 0)
    await page.goto(f"{panel}/login")
    shots += await _shoot(page, "login", width, record=record)
    await page.click("form[action='/login'] button[type=submit]")
    shots += await _shoot(page, "login-errors", width, record=record)
    seen = await _sms_count(stack.redis_url, phone)
    await page.fill("#case", case_number.group(1))
    await page.fill("#fragment", fragment)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{panel}/login/code")
    shots += await _shoot(page, "login-code", width, record=record)
    await page.fill("#code", await _latest_code(stack.redis_url, phone, seen))
    await page.click("form[action='/login/code'] button[type=submit]")
    await page.wait_for_url(f"{panel}/case/")
    deadline = time.monotonic() + 60
    while await page.locator(".task-list a").count() < 3 and time.monotonic() < deadline:
        await page.wait_for_timeout(500)
        await page.reload()
    shots += await _shoot(page, "case-overview", width, record=record)
    await page.goto(f"{panel}/tasks/")
    shots += await _shoot(page, "tasks", width, record=record)

    await _open_task(page, panel, "Podaj dochody")
    shots += await _shoot(page, "task-income", width, record=record)
    await page.click(SEND)
    shots += await _shoot(page, "task-income-errors", width, record=record)
    await page.select_option("#field-employmentType", "employed")
    await page.fill("#field-monthlyNetIncome", "8200")
    await page.set_input_files(
        "#field-incomeProof",
        files=FilePayload(
            name="zaswiadczenie.pdf", mimeType="application/pdf", buffer=_proof_of_income()
        ),
    )
    await page.click("button[name=action][value=upload]")
    await page.wait_for_url(re.compile(r".*saved=1"))
    shots += await _shoot(page, "task-income-uploaded", width, record=record)
    await page.click(SEND)
    await page.wait_for_url(f"{panel}/case/")

    await _open_task(page, panel, "Złóż zgody")
    shots += await _shoot(page, "task-consents", width, record=record)
    await page.check("#field-consentCreditCheck")
    await page.check("#field-consentDataProcessing")
    await page.click(SEND)
    await page.wait_for_url(f"{panel}/case/")

    await _open_task(page, panel, "Wypełnij ankietę")
    shots += await _shoot(page, "task-questionnaire", width, record=record)
    await page.check("#field-maritalStatus")
    await page.fill("#field-dependants", "1")
    await page.click(SEND)
    await page.wait_for_url(f"{panel}/case/")

    await _open_task(page, panel, "Podpisz wniosek")
    shots += await _shoot(page, "task-sign", width, record=record)
    seen = await _sms_count(stack.redis_url, phone)
    await page.click("button[formaction$='/signing-code']")
    await page.wait_for_url(re.compile(r".*code=sent.*"))
    await page.fill("#field-signingCode", await _latest_code(stack.redis_url, phone, seen))
    await page.check("#field-signApplication")
    shots += await _shoot(page, "task-sign-code-sent", width, record=record)
    await page.click(SEND)
    await page.wait_for_url(f"{panel}/case/")
    shots += await _shoot(page, "case-overview-signed", width, record=record)
    if not record:
        return case_number.group(1), shots
    # The switch's own link, followed directly: the open live-update stream keeps the
    # overview from ever reporting a finished load after a same-page click.
    switch = await page.get_attribute(".language-switch a[lang=en]", "href")
    await page.goto(f"{panel}{switch}")
    assert "Collecting information" in await page.inner_text(".status-panel")
    shots += await _shoot(page, "case-overview-en", width, record=record)
    await page.goto(f"{panel}/dev/outbox")
    shots += await _shoot(page, "sms-outbox", width, record=record)
    return case_number.group(1), shots


async def _walk_dashboard(page: Page, stack: DemoStack, width: int) -> list[Path]:
    """A team manager's day: the inbox, a task taken, the case, the search, signing out."""
    await page.goto(f"{stack.dashboard}/")
    await page.wait_for_selector("#kc-form-login")
    shots = await _shoot(page, "staff-sign-in", width)
    await page.fill("#username", "magda.kierownik")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#kc-login")
    await page.wait_for_url(f"{stack.dashboard}/")
    await page.goto(f"{stack.dashboard}/?tab=unassigned")
    claim = page.locator("[data-live-region=inbox] form[action$='/claim'] button")
    deadline = time.monotonic() + 60
    while not await claim.count() and time.monotonic() < deadline:
        await page.wait_for_timeout(500)
        await page.reload()
    shots += await _shoot(page, "staff-inbox", width)
    await claim.first.click()
    await page.wait_for_url(re.compile(r".*/tasks/[0-9a-f-]+\?notice=claimed"))
    shots += await _shoot(page, "staff-task", width)
    await page.click("#field-send")
    await page.wait_for_load_state()
    shots += await _shoot(page, "staff-task-errors", width)
    await page.click(".work-layout__case a[href^='/cases/']")
    await page.wait_for_url(re.compile(r".*/cases/[0-9a-f-]+"))
    shots += await _shoot(page, "staff-case", width)
    await page.goto(f"{stack.dashboard}/cases/")
    await page.click("form[action='/cases/'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/cases/\?.*"))
    shots += await _shoot(page, "staff-cases", width)
    await page.click(".site-header form[action='/logout'] button[type=submit]")
    await page.wait_for_url(f"{stack.dashboard}/signed-out")
    shots += await _shoot(page, "staff-signed-out", width)
    return shots


async def _form_gallery(page: Page, width: int, directory: Path) -> list[Path]:
    """Every form component, fresh and sent empty, rendered by the panel's own templates."""
    variables = json.loads(GALLERY_VARIABLES.read_text(encoding="utf-8"))
    shots = []
    for name, with_errors in (("form-components", False), ("form-components-errors", True)):
        preview = write_preview(
            GALLERY_FORM, directory / name, variables=variables, with_errors=with_errors
        )
        await page.goto(preview.as_uri())
        shots += await _shoot(page, name, width)
    return shots


async def _walk(stack: DemoStack) -> list[Path]:
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for width in WIDTHS:
            context = await browser.new_context(viewport={"width": width, "height": 800})
            page = await context.new_page()
            written += (await _walk_case(page, stack, width))[1]
            written += await _form_gallery(page, width, stack.directory / "previews")
            await context.close()
            # A case of its own, brought to the bank's review, for the dashboard's pages.
            context = await browser.new_context(viewport={"width": width, "height": 800})
            page = await context.new_page()
            await _walk_case(page, stack, width, co_borrowers=0, record=False)
            written += await _walk_dashboard(page, stack, width)
            await context.close()
        await browser.close()
    return written


def take_screenshots() -> list[Path]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="panel-screenshots-") as directory,
        running_stack(Path(directory) / "stack", free_port()) as stack,
    ):
        return asyncio.run(_walk(stack))
