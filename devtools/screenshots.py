"""Screenshots of every participant page at 375 and 1280 px, for the docs.

``python -m devtools screenshots`` starts the whole stack like the demo does, walks through
the pages in Debian's Chromium and writes ``docs/screenshots/<page>-<width>.png``.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

from playwright.async_api import Page, async_playwright
from redis.asyncio import Redis

from devtools.demo import REPO_ROOT, DemoStack, running_stack
from devtools.ports import free_port

OUTPUT = REPO_ROOT / "docs" / "screenshots"
WIDTHS = (375, 1280)
CHROMIUM = "/usr/bin/chromium"


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


async def _shoot(page: Page, name: str, width: int) -> Path:
    path = OUTPUT / f"{name}-{width}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def _walk(stack: DemoStack, case_text: str) -> list[Path]:
    case_number = re.search(r"case number: (\S+)", case_text)
    primary = re.search(
        r"participant primary-borrower: \S+ \(PESEL ending (\d+), phone (\S+),", case_text
    )
    assert case_number and primary, case_text
    fragment, phone = primary.group(1), primary.group(2)
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
            await page.goto(f"{stack.panel}/login")
            written.append(await _shoot(page, "login", width))
            await page.click("button[type=submit]")
            written.append(await _shoot(page, "login-errors", width))
            redis = Redis.from_url(stack.redis_url, decode_responses=True)
            seen = sum(phone in m for m in await redis.lrange("dev:sms-outbox", 0, -1))
            await redis.aclose()
            await page.fill("#case", case_number.group(1))
            await page.fill("#fragment", fragment)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{stack.panel}/login/code")
            written.append(await _shoot(page, "login-code", width))
            await page.fill("#code", await _latest_code(stack.redis_url, phone, seen))
            await page.click("form[action='/login/code'] button[type=submit]")
            await page.wait_for_url(f"{stack.panel}/tasks/")
            deadline = time.monotonic() + 60
            while await page.locator(".task-list a").count() < 3 and time.monotonic() < deadline:
                await page.wait_for_timeout(500)
                await page.reload()
            written.append(await _shoot(page, "tasks", width))
            for name, title in (
                ("task-consents", "Give your consents"),
                ("task-income", "Provide income details"),
            ):
                await page.click(f"text={title}")
                written.append(await _shoot(page, name, width))
                await page.go_back()
            await page.click("text=Provide income details")
            await page.click("form[action^='/tasks/'] button[type=submit]")
            written.append(await _shoot(page, "task-income-errors", width))
            await page.goto(f"{stack.panel}/dev/outbox")
            written.append(await _shoot(page, "sms-outbox", width))
            await context.close()
        await browser.close()
    return written


def take_screenshots() -> list[Path]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="panel-screenshots-") as directory,
        running_stack(Path(directory) / "stack", free_port()) as stack,
    ):
        return asyncio.run(_walk(stack, stack.open_case(co_borrowers=1)))
