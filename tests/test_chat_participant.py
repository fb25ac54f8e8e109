"""The participant's side of the chat: asking the bank from the Messages area or a task page,
the FAQ first, the bank's answers (with who wrote them, and only allowed links clickable),
the limits, and that no conversation is anyone else's to read, post to or listen to.

Against the session's real PostgreSQL, Redis and engine (the cases are opened through the
channels' API and their tasks come from the process); the bank's answers are given through
the domain service as the staff dashboard gives them.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.cases import case_types
from panel_core.cases.case_types import ConversationRules
from panel_core.conversations import service
from panel_core.conversations.participant_views import conversation_thread
from panel_core.db.models import (
    Case,
    Conversation,
    ConversationMessage,
    ConversationResolution,
    ConversationState,
    MessageAuthor,
)
from panel_core.db.session import create_engine, create_session_factory
from panel_core.db.transaction_hooks import settle
from panel_core.i18n import use_locale
from panel_core.identity.actors import StaffActor
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    csrf_headers,
    csrf_token,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
)

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

ANALYST = StaffActor(
    subject="sub-anna",
    username="anna.analityk",
    name="Anna Analityk",
    groups=frozenset({credit.GROUP_CREDIT_ANALYSTS}),
    roles=frozenset(),
)
INCOME_QUESTION_PL = "Jakie zaświadczenie o dochodach mam przesłać?"
# Nothing in the credit FAQ is about this.
UNRELATED = "Xylofon kwarc zebra?"


class Case2(msgspec.Struct):
    case_id: str
    primary: str
    co_borrower: str


async def credit_case(stack: Stack) -> Case2:
    body = await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )
    ids = {p["role"]: p["participantId"] for p in body["participants"]}
    return Case2(body["caseId"], ids[credit.ROLE_PRIMARY_BORROWER], ids[credit.ROLE_CO_BORROWER])


def form(client: AsyncTestClient[Any], **fields: str) -> dict[str, str]:
    return {"_csrf_token": csrf_token(client), **fields}


async def ask(client: AsyncTestClient[Any], text: str, **fields: str) -> Any:
    await client.get("/messages")
    return await client.post(
        "/messages", data=form(client, text=text, **fields), follow_redirects=False
    )


def conversation_of(response: Any) -> uuid.UUID:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    match = re.fullmatch(r"/messages/([0-9a-f-]{36})", location)
    assert match, location
    return uuid.UUID(match.group(1))


async def staff_answer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    conversation_id: uuid.UUID,
    text: str,
) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        async with sessions() as session:
            conversation = await service.find(session, ANALYST, conversation_id, lock=True)
            assert conversation is not None
            await service.post(
                session,
                ANALYST,
                conversation,
                text,
                settings=settings,
                now=datetime.now(UTC),
                redis=redis,
            )
            await session.commit()
        await settle()
    finally:
        await redis.aclose()


async def in_queue(sessions: async_sessionmaker[AsyncSession], conversation_id: uuid.UUID) -> bool:
    async with sessions() as session:
        listed = {
            c.id
            for tab in service.QUEUES
            if tab != service.QUEUE_CLOSED
            for c in await service.queue(session, ANALYST, tab)
        }
    return conversation_id in listed


async def income_task(client: AsyncTestClient[Any]) -> dict[str, Any]:
    tasks = await open_tasks(client, 3)
    return next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)


async def test_a_co_borrower_asks_about_a_step_sees_the_faq_and_sends_it_anyway(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        client.cookies.set(LANGUAGE_COOKIE, "en")
        await sign_in(client, case.co_borrower)
        task = await income_task(client)
        page = await client.get(f"/tasks/{task['id']}")
        assert f'href="/messages/new?task={task["id"]}"' in page.text
        assert "Ask about this step" in page.text
        new = await client.get(f"/messages/new?task={task['id']}")
        assert new.status_code == 200
        assert "Ask about this step" in new.text
        assert f'name="task" value="{task["id"]}"' in new.text
        # Without JavaScript, sending shows the FAQ's answers first.
        offered = await ask(client, "Which proof of income should I send?", task=task["id"])
        assert offered.status_code == 200
        assert "These answers may help you:" in offered.text
        assert "A certificate of earnings from your employer" in offered.text
        assert 'formaction="/messages/faq"' in offered.text
        assert 'name="faq_seen" value="1"' in offered.text
        assert "Send to the bank anyway" in offered.text
        sent = await client.post(
            "/messages",
            data=form(
                client, text="Which proof of income should I send?", task=task["id"], faq_seen="1"
            ),
            follow_redirects=False,
        )
        conversation_id = conversation_of(sent)
        thread = await client.get(f"/messages/{conversation_id}")
        assert thread.status_code == 200
        assert "Which proof of income should I send?" in thread.text
        # The step it is about, by the name the case type gives it.
        assert task["name"] in thread.text or "income" in thread.text.lower()
        assert f'href="/tasks/{task["id"]}"' in thread.text
        assert f'data-live-events="/events/?conversation={conversation_id}"' in thread.text
        assert 'data-live-region="thread"' in thread.text
        assert f'href="/messages/{conversation_id}"' in thread.text  # the refresh link
        listing = await client.get("/messages")
        assert f'href="/messages/{conversation_id}"' in listing.text
        assert "Waiting for the bank" in listing.text
    async with sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        assert str(conversation.task_id) == task["id"]
        assert conversation.state == ConversationState.OPEN
        assert conversation.team == credit.GROUP_CREDIT_ANALYSTS
    assert await in_queue(sessions, conversation_id)


async def test_an_answer_from_the_faq_resolves_it_and_no_one_at_the_bank_is_asked(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case.primary)
        offered = await ask(client, INCOME_QUESTION_PL)
        assert offered.status_code == 200
        assert "Zaświadczenie o zarobkach od pracodawcy" in offered.text
        resolved = await client.post(
            "/messages/faq",
            data=form(client, text=INCOME_QUESTION_PL, entry="0"),
            follow_redirects=False,
        )
        conversation_id = conversation_of(resolved)
        thread = await client.get(f"/messages/{conversation_id}")
        assert "Zaświadczenie o zarobkach od pracodawcy" in thread.text
        # Not one of this participant's FAQ entries: nothing is recorded.
        refused = await client.post(
            "/messages/faq",
            data=form(client, text=INCOME_QUESTION_PL, entry="999"),
            follow_redirects=False,
        )
        assert refused.status_code == 400
    async with sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.resolution == ConversationResolution.FAQ
        assert conversation.faq_entry == 0
        assert conversation.state == ConversationState.CLOSED
        count = len(list(await session.scalars(
            select(Conversation).where(Conversation.participant_id == uuid.UUID(case.primary))
        )))  # fmt: skip
        assert count == 1
    assert not await in_queue(sessions, conversation_id)


async def test_a_question_without_matches_goes_straight_to_the_bank(stack: Stack) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case.primary)
        page = await client.get("/messages")
        assert page.status_code == 200
        assert 'id="field-text"' in page.text and 'aria-describedby="hint-text"' in page.text
        assert "2000" in page.text  # the hint gives the length limit
        conversation_id = conversation_of(await ask(client, UNRELATED))
        listing = await client.get("/messages")
        assert f'href="/messages/{conversation_id}"' in listing.text
        api = await client.get("/api/participant/conversations")
        assert [c["id"] for c in api.json()] == [str(conversation_id)]
        assert api.json()[0]["preview"] == UNRELATED


async def test_faq_suggestions_while_typing_in_polish_and_english(stack: Stack) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case.primary)
        polish = await client.get(
            "/messages/suggestions", params={"q": "Jakie zaświadczenie o doch", "typing": "1"}
        )
        assert polish.status_code == 200
        first = polish.json()["suggestions"][0]
        assert first["entry"] == 0 and first["question"] == INCOME_QUESTION_PL
        # As typed on a phone, without diacritics.
        plain = await client.get("/messages/suggestions", params={"q": "zaswiadczenie o dochodach"})
        assert plain.json()["suggestions"][0]["question"] == INCOME_QUESTION_PL
        client.cookies.set(LANGUAGE_COOKIE, "en")
        english = await client.get(
            "/messages/suggestions", params={"q": "which proof of inc", "typing": "1"}
        )
        assert english.json()["suggestions"][0]["question"] == (
            "Which proof of income should I send?"
        )
        assert (await client.get("/messages/suggestions", params={"q": UNRELATED})).json() == {
            "suggestions": []
        }


async def test_the_banks_answer_shows_on_the_thread_and_in_the_api_with_the_first_name(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    hosts = msgspec.structs.replace(stack.settings, chat_link_hosts="bank.example.pl")
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(hosts)) as client:
        client.cookies.set(LANGUAGE_COOKIE, "en")
        await sign_in(client, case.primary)
        conversation_id = conversation_of(
            await ask(client, "See https://bank.example.pl/mine please", faq_seen="1")
        )
        overview = await client.get("/case/")
        assert 'href="/messages"' in overview.text and "Unread answers" not in overview.text
        await staff_answer(
            hosts,
            sessions,
            conversation_id,
            "Details: https://bank.example.pl/help and https://evil.example.com/login",
        )
        overview = await client.get("/case/")
        assert "Unread answers: 1" in overview.text
        api_list = await client.get("/api/participant/conversations")
        assert api_list.json()[0]["unread"] is True
        thread = await client.get(f"/messages/{conversation_id}")
        assert thread.status_code == 200
        assert '<span class="message__author">Anna</span>' in thread.text
        assert "Analityk" not in thread.text
        assert '<span class="message__author">You</span>' in thread.text
        # The bank's link to an allowed host is clickable; any other address, and any the
        # participant typed, stays text.
        assert '<a href="https://bank.example.pl/help"' in thread.text
        assert "https://evil.example.com/login" in thread.text
        assert '<a href="https://evil.example.com' not in thread.text
        assert '<a href="https://bank.example.pl/mine' not in thread.text
        assert 'data-announce="New message from Anna"' in thread.text
        # Reading the thread read the answer.
        assert "Unread answers" not in (await client.get("/case/")).text
        detail = await client.get(f"/api/participant/conversations/{conversation_id}")
        assert detail.status_code == 200
        messages = detail.json()["messages"]
        assert [(m["author"], m["authorName"]) for m in messages] == [
            ("participant", "You"),
            ("bank", "Anna"),
        ]
        assert messages[1]["text"].startswith("Details: https://bank.example.pl/help")
        assert set(messages[1]) == {"id", "author", "authorName", "text", "sentAt"}
        reply = await client.post(
            f"/messages/{conversation_id}",
            data=form(client, text="Thank you!"),
            follow_redirects=False,
        )
        assert reply.status_code == 303
        api_reply = await client.post(
            f"/api/participant/conversations/{conversation_id}/messages",
            json={"text": "One more thing."},
            headers=csrf_headers(client),
        )
        assert api_reply.status_code == 201
        assert [m["text"] for m in api_reply.json()["messages"]][-2:] == [
            "Thank you!",
            "One more thing.",
        ]

    # A case type that shows the bank, not names.
    async with sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        descriptor = await case_types.of_case_id(session, conversation.case_id)
        as_bank = msgspec.structs.replace(
            descriptor, conversations=ConversationRules(staff_shown_as="bank")
        )
        with use_locale("en"):
            view = await conversation_thread(session, as_bank, conversation, hosts)
        bank = [m for m in view.messages if m.author == "bank"]
        assert [m.author_name for m in bank] == ["The bank"]
        assert bank[0].announcement == "New message from the bank"
        staff_row = await session.scalar(
            select(ConversationMessage).where(
                ConversationMessage.conversation_id == conversation_id,
                ConversationMessage.author == MessageAuthor.STAFF,
            )
        )
        assert staff_row is not None
        with use_locale("en"):
            assert service.shown_author(as_bank, staff_row) == "The bank"
            assert service.shown_author(descriptor, staff_row) == "Anna"


async def test_the_length_and_rate_limits_on_pages_and_api(stack: Stack) -> None:
    limited = msgspec.structs.replace(
        stack.settings, chat_message_max_chars=50, chat_rate_limit_messages=2
    )
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(limited)) as client:
        client.cookies.set(LANGUAGE_COOKIE, "en")
        await sign_in(client, case.primary)
        too_long = await ask(client, "x" * 51, faq_seen="1")
        assert too_long.status_code == 400
        assert "There is a problem" in too_long.text
        assert 'href="#field-text"' in too_long.text
        assert 'id="error-text"' in too_long.text
        assert "at most 50 characters" in too_long.text
        assert "up to 50 characters" in too_long.text
        api_long = await client.post(
            "/api/participant/conversations", json={"text": "y" * 51}, headers=csrf_headers(client)
        )
        assert api_long.status_code == 400
        assert "at most 50 characters" in api_long.text
        empty = await ask(client, "   ", faq_seen="1")
        assert empty.status_code == 400 and "Write your message" in empty.text

        conversation_id = conversation_of(await ask(client, UNRELATED, faq_seen="1"))
        created = await client.post(
            "/api/participant/conversations", json={"text": UNRELATED}, headers=csrf_headers(client)
        )
        assert created.status_code == 201
        # The third message in the window is refused, on the page and by the API.
        page = await client.post(
            f"/messages/{conversation_id}",
            data=form(client, text="And another?"),
            follow_redirects=False,
        )
        assert page.status_code == 429
        assert "There is a problem" in page.text and 'id="error-text"' in page.text
        assert "sent many messages in a short time" in page.text
        api = await client.post(
            f"/api/participant/conversations/{conversation_id}/messages",
            json={"text": "Still there?"},
            headers=csrf_headers(client),
        )
        assert api.status_code == 429
        new = await ask(client, "Another question", faq_seen="1")
        assert new.status_code == 429
        detail = await client.get(f"/api/participant/conversations/{conversation_id}")
        assert [m["text"] for m in detail.json()["messages"]] == [UNRELATED]


async def test_another_participants_or_cases_conversation_is_not_found(stack: Stack) -> None:
    case = await credit_case(stack)
    other = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as owner:
        await sign_in(owner, case.primary)
        conversation_id = conversation_of(await ask(owner, UNRELATED))
        tasks = await open_tasks(owner, 3)
        assert (await owner.get(f"/events/?conversation={uuid.uuid4()}")).status_code == 404

    for intruder in (case.co_borrower, other.primary):
        async with AsyncTestClient(create_app(stack.settings)) as client:
            await sign_in(client, intruder)
            await client.get("/messages")
            assert (await client.get(f"/messages/{conversation_id}")).status_code == 404
            posted = await client.post(
                f"/messages/{conversation_id}",
                data=form(client, text="Let me in"),
                follow_redirects=False,
            )
            assert posted.status_code == 404
            api = f"/api/participant/conversations/{conversation_id}"
            assert (await client.get(api)).status_code == 404
            api_post = await client.post(
                f"{api}/messages", json={"text": "Let me in"}, headers=csrf_headers(client)
            )
            assert api_post.status_code == 404
            assert (await client.get(f"/events/?conversation={conversation_id}")).status_code == 404
            assert (await client.get("/api/participant/conversations")).json() == []
            # Another's task cannot be attached either.
            assert (await client.get(f"/messages/new?task={tasks[0]['id']}")).status_code == 404
            attached = await client.post(
                "/api/participant/conversations",
                json={"text": UNRELATED, "taskId": tasks[0]["id"]},
                headers=csrf_headers(client),
            )
            assert attached.status_code == 404


def _answer_soon(settings: Settings, conversation_id: uuid.UUID, text: str) -> threading.Thread:
    """The bank answers from another thread: the test client holds this loop while it
    streams."""

    def answer() -> None:
        time.sleep(0.8)

        async def send() -> None:
            db = create_engine(settings.database_url)
            try:
                await staff_answer(settings, create_session_factory(db), conversation_id, text)
            finally:
                await db.dispose()

        asyncio.run(send())

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


async def test_the_banks_answer_arrives_on_the_owners_stream_only(stack: Stack) -> None:
    # A short session, so each stream ends by itself and the test reads all of it.
    short = msgspec.structs.replace(stack.settings, session_idle_timeout_seconds=3)
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(short)) as owner:
        await sign_in(owner, case.primary)
        conversation_id = conversation_of(await ask(owner, UNRELATED))
        await sign_in(owner, case.primary)
        answering = _answer_soon(short, conversation_id, "Hello from the bank")
        async with owner.stream("GET", f"/events/?conversation={conversation_id}") as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]
        answering.join()
    assert 'data: {"kind": "message"}' in lines
    assert [line for line in lines if line.startswith("event:")][-1] == "event: session-ended"

    async with AsyncTestClient(create_app(short)) as neighbour:
        await sign_in(neighbour, case.co_borrower)
        answering = _answer_soon(short, conversation_id, "Another answer")
        async with neighbour.stream("GET", "/events/") as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]
        answering.join()
    # The case's own updates may come (the process moves on), never the conversation's.
    assert 'data: {"kind": "message"}' not in lines
    assert lines and "event: session-ended" in lines


async def test_after_signing_out_the_messages_and_their_stream_are_refused(stack: Stack) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case.primary)
        conversation_id = conversation_of(await ask(client, UNRELATED))
        out = await client.post("/logout", data={"_csrf_token": csrf_token(client)})
        assert out.status_code in (200, 303)
        for path in (
            "/messages",
            f"/messages/{conversation_id}",
            f"/api/participant/conversations/{conversation_id}",
            f"/events/?conversation={conversation_id}",
        ):
            assert (await client.get(path, follow_redirects=False)).status_code == 401, path


async def test_a_closed_case_that_shows_its_status_has_no_messages(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await credit_case(stack)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case.primary)
        conversation_id = conversation_of(await ask(client, UNRELATED))
        async with sessions() as session:
            row = await session.get(Case, uuid.UUID(case.case_id))
            assert row is not None
            now = datetime.now(UTC)
            row.closed_at, row.access_until, row.access_shows = (
                now,
                now + timedelta(days=30),
                "status",
            )
            await session.commit()
        overview = await client.get("/case/")
        assert overview.status_code == 200 and 'href="/messages"' not in overview.text
        for path in (
            "/messages",
            "/messages/new",
            f"/messages/{conversation_id}",
            "/messages/suggestions?q=dochody",
            "/api/participant/conversations",
            f"/api/participant/conversations/{conversation_id}",
            f"/events/?conversation={conversation_id}",
        ):
            assert (await client.get(path)).status_code == 404, path
        posted = await client.post(
            f"/messages/{conversation_id}", data=form(client, text="Hello?"), follow_redirects=False
        )
        assert posted.status_code == 404
