"""The channels' API documentation works in a browser under the panel's own CSP."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, ConsoleMessage

from tests.test_accessibility import browser, installed, panel

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

__all__ = ["browser", "installed", "panel"]  # fixtures shared with the accessibility tests


async def test_the_api_documentation_renders_with_nothing_blocked(
    panel: str, browser: Browser
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    try:
        response = await page.goto(f"{panel}/schema/swagger")
        assert response is not None and response.status == 200
        csp = await response.header_value("content-security-policy")
        assert csp is not None and "script-src 'self'" in csp and "unsafe" not in csp
        # Swagger UI built the page from the schema: the channels' operation is listed.
        await page.get_by_text("/api/channel/cases", exact=True).first.wait_for(timeout=15_000)
        assert await page.locator(".info .title").first.inner_text() != ""
        # Every asset came from the panel itself, and nothing was refused by the CSP.
        assets = await page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert assets and all(url.startswith(panel) for url in assets), assets
    finally:
        await context.close()
    assert problems == [], problems
    assert failed == [], failed
