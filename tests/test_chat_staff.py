"""The dashboard's side of the chat against the real Keycloak, engine, PostgreSQL, Redis and
workers: the team's queue and who sees what, take, answer, hand over, close, the case beside
the conversation, canned answers kept by managers, the case export, the live stream and the
navigation's unread badges. Participants' questions are asked through the domain service."""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.audit import log as audit
from panel_core.conversations import service
from panel_core.db.models import (
    AuditEvent,
    CannedAnswer,
    Conversation,
    ConversationState,
    MessageAuthor,
)
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from staff.app import create_app
from tests.chat_staff_helpers import INCOME_PROOF, ChatCase, ask, badges, chat_case, write_soon
from tests.staff_helpers import StaffBrowser, csrf_field

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Members of staff, each in their own browser with the dashboard in English."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_as(username: str, settings: Settings | None = None) -> StaffBrowser:
        chosen = settings or staff_settings
        client = AsyncTestClient(create_app(chosen))
        await client.__aenter__()
        client.cookies.set(LANGUAGE_COOKIE, "en")
        browser = StaffBrowser(client, chosen)
        opened.append((browser, client))
        await browser.sign_in(username)
        return browser

    yield open_as
    for browser, client in opened:
        browser.close()
        await client.__aexit__(None, None, None)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def case(settings: Settings) -> ChatCase:
    """One case; each test asks its own questions in it."""
    return await chat_case(settings)


async def conversation(
    sessions: async_sessionmaker[AsyncSession], conversation_id: uuid.UUID
) -> Conversation:
    async with sessions() as session:
        found = await session.get(Conversation, conversation_id)
        assert found is not None
        return found


async def audited(
    sessions: async_sessionmaker[AsyncSession], event: str, conversation_id: uuid.UUID
) -> list[AuditEvent]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)
        )
        return [e for e in rows if (e.details or {}).get("conversation") == str(conversation_id)]


def row_of(page: str, conversation_id: uuid.UUID) -> str:
    marker = f'data-conversation="{conversation_id}"'
    assert marker in page, "the conversation is not listed"
    return page.split(marker, 1)[1].split("</tr>", 1)[0]


# -- the queue, and who may see a conversation ----------------------------------------------


async def test_a_question_waits_in_its_teams_queue_and_is_answered_handed_over_and_closed(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    question = "Jakie zaświadczenie o dochodach mam przesłać? <b>pilne</b>"
    conversation_id = await ask(sessions, settings, case, question)
    analyst = await people("anna.analityk")
    agent = await people("celina.konsultant")

    queue = await analyst.page("/conversations?tab=unassigned")
    assert queue.status_code == 200
    row = row_of(queue.text, conversation_id)
    assert f'href="/cases/{case.case_id}"' in row and case.case_number in row
    assert "Borrower" in row and "Credit application" in row
    assert "Provide income details and proof" in row
    assert "unread" in row and "nobody" in row
    # The participant is their role in the case: never their phone, PESEL or question.
    for personal in (case.participant["phone"], case.participant["pesel"]):
        assert personal not in queue.text

    # A call-centre agent neither sees it in her queue nor opens it, page or stream.
    other = await agent.page("/conversations?tab=unassigned")
    assert f'data-conversation="{conversation_id}"' not in other.text
    assert (await agent.page(f"/conversations/{conversation_id}")).status_code == 404
    stream = await agent.client.get(f"/events/?conversation={conversation_id}")
    assert stream.status_code == 404

    page = await analyst.page(f"/conversations/{conversation_id}")
    assert page.status_code == 200
    # The participant's text is text: escaped, never markup.
    assert "&lt;b&gt;pilne&lt;/b&gt;" in page.text and "<b>pilne</b>" not in page.text
    case_beside = page.text.split('aria-labelledby="case-heading"', 1)[1]
    assert "<strong>Collecting information</strong>" in case_beside
    assert "Collecting information and documents" in case_beside  # the stage
    assert "Provide income details and proof (Open)" in case_beside
    assert INCOME_PROOF in case_beside and "Waiting for review" in case_beside
    assert f'href="/cases/{case.case_id}"' in case_beside

    taken = await analyst.post_form(
        f"/conversations/{conversation_id}/take", {}, f"/conversations/{conversation_id}"
    )
    assert taken.status_code == 303
    assert (await conversation(sessions, conversation_id)).assignee_username == "anna.analityk"
    mine = await analyst.page("/conversations?tab=mine")
    assert f'data-conversation="{conversation_id}"' in mine.text

    answer = "Proszę przesłać zaświadczenie od pracodawcy z ostatnich 3 miesięcy."
    sent = await analyst.post_form(
        f"/conversations/{conversation_id}/messages",
        {"text": answer},
        f"/conversations/{conversation_id}",
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/conversations/{conversation_id}?notice=sent"
    # The participant has it, unread, from the analyst.
    async with sessions() as session:
        found = await service.find(session, case.actor, conversation_id)
        assert found is not None
        assert service.unread_by_participant(found)
        thread = await service.messages(session, found)
    assert [m.author for m in thread] == [MessageAuthor.PARTICIPANT, MessageAuthor.STAFF]
    assert thread[1].body == answer and thread[1].staff_username == "anna.analityk"
    # Audited with its author, the analyst (and the text's fingerprint, not the text).
    message_events = await audited(sessions, audit.CONVERSATION_MESSAGE, conversation_id)
    staff_event = next(e for e in message_events if e.details["author"] == "staff")
    assert staff_event.actor_kind == "staff" and staff_event.staff_name == "Anna Kowalska"
    assert staff_event.details["username"] == "anna.analityk"
    assert answer not in json.dumps(staff_event.details, ensure_ascii=False)
    shown = await analyst.page(f"/conversations/{conversation_id}")
    assert "Anna Kowalska" in shown.text and html.escape(answer) in shown.text

    # To the call-centre agents' queue: now Celina sees it, unassigned.
    handed = await analyst.post_form(
        f"/conversations/{conversation_id}/hand-over",
        {"team": "call-centre-agents", "username": ""},
        f"/conversations/{conversation_id}",
    )
    assert handed.status_code == 303, handed.text
    moved = await conversation(sessions, conversation_id)
    assert (moved.team, moved.assignee_username) == ("call-centre-agents", None)
    waiting = await agent.page("/conversations?tab=unassigned")
    assert f'data-conversation="{conversation_id}"' in waiting.text
    assert (await agent.page(f"/conversations/{conversation_id}")).status_code == 200
    # Anna is in neither its team nor assigned: it is gone for her.
    assert (await analyst.page(f"/conversations/{conversation_id}")).status_code == 404

    # To a colleague by user name: only one who has signed in to the dashboard.
    unknown = await agent.post_form(
        f"/conversations/{conversation_id}/hand-over",
        {"team": "", "username": "nobody.here"},
        f"/conversations/{conversation_id}",
    )
    assert unknown.status_code == 400
    assert "No colleague with this user name has signed in" in unknown.text
    assert 'href="#hand-over-username"' in unknown.text
    no_team = await agent.post_form(
        f"/conversations/{conversation_id}/hand-over",
        {"team": "", "username": ""},
        f"/conversations/{conversation_id}",
    )
    assert no_team.status_code == 400 and 'href="#hand-over-team"' in no_team.text
    to_anna = await agent.post_form(
        f"/conversations/{conversation_id}/hand-over",
        {"team": "", "username": "anna.analityk"},
        f"/conversations/{conversation_id}",
    )
    assert to_anna.status_code == 303
    assert (await conversation(sessions, conversation_id)).assignee_username == "anna.analityk"
    assert (await analyst.page(f"/conversations/{conversation_id}")).status_code == 200

    # Celina still sees it (her team's), but answering Anna's conversation is refused.
    refused = await agent.post_form(
        f"/conversations/{conversation_id}/messages",
        {"text": "Ja odpowiem."},
        f"/conversations/{conversation_id}",
    )
    assert refused.status_code == 400
    assert "Take the conversation before answering it." in refused.text
    assert "Ja odpowiem." in refused.text  # what she typed is kept
    async with sessions() as session:
        found = await service.find(session, case.actor, conversation_id)
        assert found is not None
        assert len(await service.messages(session, found)) == 2

    closed = await analyst.post_form(
        f"/conversations/{conversation_id}/close", {}, f"/conversations/{conversation_id}"
    )
    assert closed.status_code == 303
    assert (await conversation(sessions, conversation_id)).state == ConversationState.CLOSED
    closed_tab = await analyst.page("/conversations?tab=closed")
    assert f'data-conversation="{conversation_id}"' in closed_tab.text
    open_tab = await analyst.page("/conversations?tab=all")
    assert f'data-conversation="{conversation_id}"' not in open_tab.text

    for event in (
        audit.CONVERSATION_TAKEN,
        audit.CONVERSATION_HANDED_OVER,
        audit.CONVERSATION_CLOSED,
    ):
        assert all(e.actor_kind == "staff" for e in await audited(sessions, event, conversation_id))
    assert len(await audited(sessions, audit.CONVERSATION_HANDED_OVER, conversation_id)) == 2

    # The case page lists it, linked.
    case_page = await analyst.page(f"/cases/{case.case_id}")
    section = case_page.text.split('id="conversations"', 1)[1].split("</section>", 1)[0]
    assert f'href="/conversations/{conversation_id}"' in section


async def test_answering_an_unassigned_conversation_takes_it(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    conversation_id = await ask(
        sessions, settings, case, "Kiedy dostanę decyzję?", about_income=False
    )
    analyst = await people("anna.analityk")
    page = await analyst.page(f"/conversations/{conversation_id}")
    assert "the case as a whole" in page.text
    empty = await analyst.post_form(
        f"/conversations/{conversation_id}/messages",
        {"text": "  \n "},
        f"/conversations/{conversation_id}",
    )
    assert empty.status_code == 400 and 'href="#reply-text"' in empty.text
    assert "Write your message before sending it." in empty.text
    assert (await conversation(sessions, conversation_id)).assignee_username is None
    sent = await analyst.post_form(
        f"/conversations/{conversation_id}/messages",
        {"text": "Decyzja zwykle w 3 dni robocze."},
        f"/conversations/{conversation_id}",
    )
    assert sent.status_code == 303
    assert (await conversation(sessions, conversation_id)).assignee_username == "anna.analityk"


# -- canned answers ------------------------------------------------------------------------


async def test_managers_keep_canned_answers_and_the_conversation_offers_them(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    manager = await people("magda.kierownik")
    analyst = await people("anna.analityk")
    base = "/conversations/canned-answers"
    suffix = uuid.uuid4().hex[:6]
    polish = {
        "case_type": "credit-application",
        "locale": "pl",
        "title": f"Zaświadczenie {suffix}",
        "text": "Wystarczy zaświadczenie o zarobkach od pracodawcy.",
    }
    english = {
        "case_type": "credit-application",
        "locale": "en",
        "title": f"Income proof {suffix}",
        "text": "A certificate of earnings from your employer is enough.",
    }

    # Managers only: the list and every change are refused to an analyst.
    assert (await analyst.page(base)).status_code == 403
    token = csrf_field((await analyst.page("/conversations")).text)
    for path in (base, f"{base}/{uuid.uuid4()}", f"{base}/{uuid.uuid4()}/delete"):
        refused = await analyst.client.post(
            path, data={**polish, "_csrf_token": token}, follow_redirects=False
        )
        assert refused.status_code == 403, path

    missing = await manager.post_form(base, {**polish, "title": " "}, base)
    assert missing.status_code == 400
    assert "Give the answer a short title." in missing.text
    assert 'href="#answer-title"' in missing.text and 'aria-invalid="true"' in missing.text
    no_language = await manager.post_form(base, {**polish, "locale": "de"}, base)
    assert no_language.status_code == 400 and 'href="#answer-locale"' in no_language.text
    for answer in (polish, english):
        added = await manager.post_form(base, answer, base)
        assert added.status_code == 303, added.text
    async with sessions() as session:
        rows = {
            a.locale: a
            for a in await session.scalars(
                select(CannedAnswer).where(CannedAnswer.title.contains(suffix))
            )
        }
    assert set(rows) == {"pl", "en"} and rows["pl"].updated_by == "magda.kierownik"
    listed = await manager.page(base)
    assert html.escape(polish["title"]) in listed.text or polish["title"] in listed.text
    assert english["title"] in listed.text

    changed_text = "Wystarczy zaświadczenie o zarobkach od pracodawcy z ostatnich 3 miesięcy."
    edit_page = await manager.page(f"{base}/{rows['pl'].id}")
    assert edit_page.status_code == 200 and polish["text"] in edit_page.text
    bad_edit = await manager.post_form(
        f"{base}/{rows['pl'].id}", {**polish, "text": ""}, f"{base}/{rows['pl'].id}"
    )
    assert bad_edit.status_code == 400 and "Write the answer" in bad_edit.text
    edited = await manager.post_form(
        f"{base}/{rows['pl'].id}", {**polish, "text": changed_text}, f"{base}/{rows['pl'].id}"
    )
    assert edited.status_code == 303
    async with sessions() as session:
        kept = await session.get(CannedAnswer, rows["pl"].id)
        assert kept is not None and kept.text == changed_text
        saved_events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event == audit.CANNED_ANSWER_SAVED)
            )
        )
    assert any(e.details.get("answer") == str(rows["pl"].id) and e.staff_name for e in saved_events)

    # The conversation of a Polish-speaking participant offers the Polish answer only.
    conversation_id = await ask(sessions, settings, case, "Jakie zaświadczenie?")
    page = await analyst.page(f"/conversations/{conversation_id}")
    offered = page.text.split('id="canned-answer"', 1)[1].split("</select>", 1)[0]
    assert str(rows["pl"].id) in offered and str(rows["en"].id) not in offered
    assert 'src="/static/js/canned-answers.js"' in page.text
    # Without JavaScript, "Use this answer" puts its text into the box, nothing is sent.
    used = await analyst.post_form(
        f"/conversations/{conversation_id}/messages",
        {"answer": str(rows["pl"].id), "use": "1", "text": ""},
        f"/conversations/{conversation_id}",
    )
    assert used.status_code == 200
    box = used.text.split('id="reply-text"', 1)[1].split("</textarea>", 1)[0]
    assert changed_text in html.unescape(box)
    async with sessions() as session:
        found = await service.find(session, case.actor, conversation_id)
        assert found is not None
        assert len(await service.messages(session, found)) == 1
    # An answer of another case type is not offered, and not used.
    foreign = await analyst.post_form(
        f"/conversations/{conversation_id}/messages",
        {"answer": str(uuid.uuid4()), "use": "1", "text": ""},
        f"/conversations/{conversation_id}",
    )
    assert foreign.status_code == 400 and 'href="#canned-answer"' in foreign.text

    for answer_id in (rows["pl"].id, rows["en"].id):
        deleted = await manager.post_form(f"{base}/{answer_id}/delete", {}, base)
        assert deleted.status_code == 303
    async with sessions() as session:
        assert await session.get(CannedAnswer, rows["pl"].id) is None
        deletes = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event == audit.CANNED_ANSWER_DELETED)
            )
        )
    assert {str(rows["pl"].id), str(rows["en"].id)} <= {e.details.get("answer") for e in deletes}
    assert (await manager.page(f"{base}/{rows['pl'].id}")).status_code == 404


# -- the case export -----------------------------------------------------------------------


async def test_a_manager_exports_the_case_with_its_conversations(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    question = f"Czy mogę dosłać dokument później? {uuid.uuid4().hex[:6]}"
    conversation_id = await ask(sessions, settings, case, question)
    manager = await people("magda.kierownik")
    analyst = await people("anna.analityk")

    case_page = await manager.page(f"/cases/{case.case_id}")
    assert f'href="/cases/{case.case_id}/export"' in case_page.text
    analyst_case_page = await analyst.page(f"/cases/{case.case_id}")
    assert f'href="/cases/{case.case_id}/export"' not in analyst_case_page.text
    assert (await analyst.page(f"/cases/{case.case_id}/export")).status_code == 403
    assert (await manager.page(f"/cases/{uuid.uuid4()}/export")).status_code == 404

    exported = await manager.client.get(f"/cases/{case.case_id}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    disposition = exported.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"{case.case_number}.json" in disposition
    body = exported.json()
    assert body["case"]["caseNumber"] == case.case_number
    chat = next(c for c in body["conversations"] if c["id"] == str(conversation_id))
    assert [m["text"] for m in chat["messages"]] == [question]

    async with sessions() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.event == audit.CASE_EXPORTED, AuditEvent.case_id == case.case_id
                )
            )
        )
    assert len(events) == 1
    assert events[0].staff_name and events[0].details["username"] == "magda.kierownik"


# -- live: the event stream and the badges -------------------------------------------------


async def test_a_participants_message_reaches_the_staff_streams(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    staff_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    conversation_id = await ask(sessions, settings, case, "Czy ktoś to widzi?")
    # A short session: the stream ends by itself, and the test reads all of it.
    short = msgspec.structs.replace(staff_settings, staff_session_idle_timeout_seconds=5)
    for query, kind in (
        (f"conversation={conversation_id}", "message"),
        ("conversations=1", "conversations-changed"),
    ):
        # Each stream ends with its session: a new one for each.
        analyst = await people("anna.analityk", short)
        writer = write_soon(settings, case.actor, conversation_id, f"Halo ({kind})")
        async with analyst.client.stream("GET", f"/events/?{query}") as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]
        writer.join()
        assert "event: case-update" in lines, (query, lines)
        assert f'data: {{"kind": "{kind}"}}' in lines, (query, lines)
        assert lines[-3:][0] == "event: session-ended" or "event: session-ended" in lines
        # Nothing personal travels on it.
        assert not any("Halo" in line for line in lines)


async def test_the_unread_badge_counts_new_messages_until_the_thread_is_read(
    people: Opener,
    case: ChatCase,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    analyst = await people("anna.analityk")
    waiting_before, _ = badges((await analyst.page("/")).text)
    conversation_id = await ask(sessions, settings, case, "Pytanie o badge")
    waiting, unread = badges((await analyst.page("/cases/")).text)
    assert waiting == waiting_before + 1

    taken = await analyst.post_form(
        f"/conversations/{conversation_id}/take", {}, f"/conversations/{conversation_id}"
    )
    assert taken.status_code == 303
    # Opened it: read.
    assert badges((await analyst.page("/")).text) == (waiting - 1, unread)
    writer = write_soon(settings, case.actor, conversation_id, "Jeszcze jedno pytanie")
    writer.join()
    assert badges((await analyst.page("/")).text) == (waiting - 1, unread + 1)
    queue = await analyst.page("/conversations?tab=mine")
    assert "unread" in row_of(queue.text, conversation_id)
    await analyst.page(f"/conversations/{conversation_id}")
    assert badges((await analyst.page("/")).text) == (waiting - 1, unread)
