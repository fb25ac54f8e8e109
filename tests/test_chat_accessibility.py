"""The Messages area in a real browser: axe-core finds nothing at 1280 and 320 px, with the
FAQ's answers offered while typing and the bank's answer read out as it arrives, and it can
be used with the keyboard alone."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Stack
from tests.test_accessibility import (  # noqa: F401 - the fixtures are used by name
    WIDTHS,
    browser,
    check,
    in_language,
    installed,
    open_case,
    panel,
    tab_to,
)
from tests.test_chat_participant import staff_answer

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

TYPED = {"pl": "Jakie zaświadczenie o doch", "en": "Which proof of inc"}
ANNOUNCED = {"pl": "Anna", "en": "New message from Anna"}


async def signed_in(page: Page, url: str) -> None:
    case = await open_case(url)
    await page.goto(f"{url}/dev/sign-in?participant={case['participants'][0]['participantId']}")
    await page.click("form[action='/dev/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{url}/case/")


def thread_id(page: Page) -> uuid.UUID:
    match = re.search(r"/messages/([0-9a-f-]{36})$", page.url)
    assert match, page.url
    return uuid.UUID(match.group(1))


@pytest.mark.parametrize("locale", ["pl", "en"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_the_messages_pages_pass_axe_with_suggestions_and_a_live_answer(
    panel: str,  # noqa: F811 - the fixture imported above
    browser: Browser,  # noqa: F811
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    width: int,
    locale: str,
) -> None:
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    await in_language(context, panel, locale)
    page = await context.new_page()
    where = f"{locale}: "
    try:
        await signed_in(page, panel)
        await page.click("main a[href='/messages']")
        await page.wait_for_url(f"{panel}/messages")
        await check(page, width, where + "messages, none yet")
        await page.click("#send-message")
        await page.wait_for_load_state()
        assert await page.locator(".error-summary").count() == 1
        await check(page, width, where + "messages, nothing written")
        await page.type("#field-text", TYPED[locale])
        await page.wait_for_selector("#faq-suggestions li")
        assert await page.locator("[data-faq-seen]").input_value() == "1"
        await check(page, width, where + "a question with the FAQ's answers offered")
        await page.click("#send-message")
        await page.wait_for_url(re.compile(r".*/messages/[0-9a-f-]{36}$"))
        await check(page, width, where + "the thread")
        # Listening before the bank answers.
        await page.wait_for_timeout(1500)
        await staff_answer(stack.settings, sessions, thread_id(page), "Proszę przesłać PIT-37.")
        await page.wait_for_function(
            "() => document.querySelector('[data-message-announcer]').textContent.length > 0",
            timeout=20000,
        )
        said = await page.locator("[data-message-announcer]").text_content()
        assert said and ANNOUNCED[locale] in said and "PIT-37" in said
        assert await page.locator(".message--bank").count() == 1
        await check(page, width, where + "the thread, an answer announced")
        await page.goto(f"{panel}/messages")
        await check(page, width, where + "messages, one conversation")
    finally:
        await context.close()


async def test_a_question_is_asked_with_the_keyboard_alone(
    panel: str,  # noqa: F811 - the fixture imported above
    browser: Browser,  # noqa: F811
) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 800})
    page = await context.new_page()
    try:
        await signed_in(page, panel)
        await page.goto(f"{panel}/messages")
        await tab_to(page, "#field-text", limit=40)
        await page.keyboard.type(TYPED["pl"])
        await page.wait_for_selector("#faq-suggestions li")
        # The FAQ's "this answers my question" is reachable by keyboard.
        await tab_to(page, "#faq-suggestions button[formaction='/messages/faq']")
        await tab_to(page, "#send-message")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/messages/[0-9a-f-]{36}$"))
        assert await page.locator(".message--participant").count() == 1
    finally:
        await context.close()
