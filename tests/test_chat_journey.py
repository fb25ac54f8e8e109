"""The chat end to end, as the issue tells it: a co-borrower asks about the income document
from the task page and is offered the FAQ, sends the question anyway; an analyst sees it in
the dashboard with the case beside it and answers; the co-borrower's open page hears of the
answer live, and with the page closed they get one SMS about it, however often the job runs.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from bff.app import create_app as panel_app
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from staff.app import create_app as staff_app
from tests import credit
from tests.conftest import Stack
from tests.helpers import eventually, form_token, open_case_via_channel, open_tasks, person, sign_in
from tests.sms_inbox import messages_naming
from tests.staff_helpers import StaffBrowser, csrf_field

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

QUESTION = "Which income document do you need from me? I am paid by two employers."
ANSWER = "Send the certificates of both employers, one file each."


def _answer_from_another_thread(
    staff_settings: Settings, cookies: dict[str, str], conversation: str, delay: float
) -> threading.Thread:
    """The analyst answers while the participant's stream is open: the test client holds this
    loop while it streams, so the dashboard is driven from a loop of its own."""

    def answer() -> None:
        time.sleep(delay)

        async def post() -> None:
            async with AsyncTestClient(staff_app(staff_settings)) as client:
                for name, value in cookies.items():
                    client.cookies.set(name, value)
                page = await client.get(f"/conversations/{conversation}")
                assert page.status_code == 200, page.text
                sent = await client.post(
                    f"/conversations/{conversation}/messages",
                    data={"text": ANSWER, "_csrf_token": csrf_field(page.text)},
                    follow_redirects=False,
                )
                assert sent.status_code == 303, sent.text

        asyncio.run(post())

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


async def test_a_co_borrower_asks_about_the_income_document_and_the_analyst_answers(
    stack: Stack, staff_settings: Settings
) -> None:
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0, "en")
    co_borrower = person(credit.ROLE_CO_BORROWER, 1, "en")
    opened = await open_case_via_channel(stack.settings, [borrower, co_borrower])
    case_number = opened["caseNumber"]
    co_id = next(
        p["participantId"] for p in opened["participants"] if p["role"] == credit.ROLE_CO_BORROWER
    )
    # The stream ends with the session, so the test reads all of it.
    short = msgspec.structs.replace(stack.settings, session_idle_timeout_seconds=10)

    async with AsyncTestClient(panel_app(short)) as panel:
        panel.cookies.set(LANGUAGE_COOKIE, "en")
        await sign_in(panel, co_id)
        tasks = await open_tasks(panel, 3)
        income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)

        # From the task page.
        task_page = await panel.get(f"/tasks/{income['id']}")
        assert task_page.status_code == 200
        ask = re.search(r'href="(/messages/new\?task=[^"]+)"', task_page.text)
        assert ask, "the task page offers to ask about this step"
        form = await panel.get(ask.group(1).replace("&amp;", "&"))
        assert form.status_code == 200
        assert "Provide income details and proof" in form.text

        # While typing: the FAQ's entry on the proof of income comes first.
        typed = await panel.get(
            "/messages/suggestions", params={"q": "which income docum", "typing": "1"}
        )
        assert typed.status_code == 200
        assert typed.json()["suggestions"][0]["question"] == "Which proof of income should I send?"

        # Sending without JavaScript shows the suggestions first; the co-borrower sends anyway.
        offered = await panel.post(
            "/messages",
            data={"text": QUESTION, "task": income["id"], "_csrf_token": form_token(form.text)},
            follow_redirects=False,
        )
        assert offered.status_code == 200, offered.text
        assert "Which proof of income should I send?" in offered.text
        sent = await panel.post(
            "/messages",
            data={
                "text": QUESTION,
                "task": income["id"],
                "faq_seen": "1",
                "_csrf_token": form_token(offered.text),
            },
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        thread_path = sent.headers["location"]
        conversation = thread_path.rsplit("/", 1)[-1]
        uuid.UUID(conversation)

        # The analyst's queue has it, and its page shows the case beside the question.
        analyst = StaffBrowser(AsyncTestClient(staff_app(staff_settings)), staff_settings)
        async with analyst.client:
            analyst.client.cookies.set(LANGUAGE_COOKIE, "en")
            await analyst.sign_in("anna.analityk")
            queue = await analyst.page("/conversations?tab=unassigned")
            assert queue.status_code == 200
            assert case_number in queue.text
            shown = await analyst.page(f"/conversations/{conversation}")
            assert shown.status_code == 200
            assert QUESTION in shown.text
            assert case_number in shown.text
            assert "Provide income details and proof" in shown.text
            assert "Collecting information" in shown.text
            cookies = dict(analyst.client.cookies.items())
            analyst.close()

        # The co-borrower's open page hears of the answer as it is sent.
        answering = _answer_from_another_thread(staff_settings, cookies, conversation, 1.0)
        async with panel.stream(
            "GET", f"/events/?conversation={conversation}", headers={"x-panel-background": "1"}
        ) as stream:
            assert stream.status_code == 200
            lines = [line async for line in stream.aiter_lines()]
        answering.join()
        assert "event: case-update" in lines
        assert 'data: {"kind": "message"}' in lines

        # With the page closed: the workers send one SMS, without the answer's words, and no
        # other however often their loop runs (the test stack's runs every half second).
        async def texts() -> list[str] | None:
            found = await messages_naming(stack.settings.redis_url, co_borrower["phone"], "message")
            return found or None

        told: list[str] = await eventually(texts, within=30)
        await asyncio.sleep(4 * stack.settings.chat_away_sms_interval_seconds + 1)
        told = await messages_naming(stack.settings.redis_url, co_borrower["phone"], "message")
        assert len(told) == 1
        assert case_number in told[0]
        assert ANSWER not in told[0]
        assert not await messages_naming(stack.settings.redis_url, borrower["phone"], "message")

        # Back on the panel (the short session has ended meanwhile), the answer reads with the
        # analyst's first name.
        await sign_in(panel, co_id)
        read = await panel.get(thread_path)
        assert read.status_code == 200
        assert ANSWER in read.text
        assert "Anna" in read.text
        assert "analityk" not in read.text.lower()
