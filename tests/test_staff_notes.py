"""The customer card and staff notes, as bank employees use them through the real Keycloak.

A person is one customer across cases of every type by the keyed blind index of their PESEL;
notes on a case and on a customer are for staff only, plain text, and can be changed by
their author for a short while only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN
from bff.app import create_app as panel_app
from panel_core.audit import log as audit
from panel_core.cases.notes import MAX_NOTE_CHARS
from panel_core.clock import FakeClock
from panel_core.db.models import AuditEvent, StaffNote
from panel_core.settings import Settings
from panel_web.locale import LANGUAGE_COOKIE
from staff.app import create_app
from tests import credit
from tests.helpers import person, sign_in
from tests.staff_helpers import StaffBrowser

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_browser(clock: FakeClock | None = None) -> StaffBrowser:
        client = AsyncTestClient(create_app(staff_settings, clock=clock))
        await client.__aenter__()
        # These tests read the English texts; the Polish ones are the axe tests' (browser).
        client.cookies.set(LANGUAGE_COOKIE, "en")
        browser = StaffBrowser(client, staff_settings)
        opened.append((browser, client))
        return browser

    yield open_browser
    for browser, client in opened:
        browser.close()
        await client.__aexit__(None, None, None)


async def open_case(settings: Settings, case_type: str, people: list[dict[str, str]]) -> Any:
    async with AsyncTestClient(panel_app(settings)) as client:
        response = await client.post(
            "/api/channel/cases",
            json={"caseType": case_type, "channel": "branch", "participants": people},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_customer_card_lists_a_persons_cases_of_every_type_and_no_one_elses(
    settings: Settings, people: Opener
) -> None:
    me = person(credit.ROLE_PRIMARY_BORROWER, 0)
    someone = person(credit.ROLE_CO_BORROWER, 1)
    credit_case = await open_case(settings, credit.CASE_TYPE_CREDIT, [me, someone])
    # The same person, as a guardian, in a case of another type, with another phone.
    guardian = {**me, "role": "guardian", "phone": person("guardian", 2)["phone"]}
    account = await open_case(settings, "minor-account", [guardian])
    other = await open_case(
        settings, credit.CASE_TYPE_CREDIT, [person(credit.ROLE_PRIMARY_BORROWER, 3)]
    )

    adviser = await people()
    await adviser.sign_in("bartosz.doradca")
    mine = credit_case["participants"][0]["participantId"]
    case_page = await adviser.page(f"/cases/{credit_case['caseId']}")
    assert f'href="/customers/{mine}"' in case_page.text
    card = await adviser.page(f"/customers/{mine}")
    assert card.status_code == 200
    assert credit_case["caseNumber"] in card.text and account["caseNumber"] in card.text
    assert other["caseNumber"] not in card.text
    # The card never shows, nor is addressed by, the PESEL or its index.
    assert me["pesel"] not in card.text
    # Opened from the other case, it is the same customer's card.
    from_account = await adviser.page(f"/customers/{account['participants'][0]['participantId']}")
    assert credit_case["caseNumber"] in from_account.text
    # The co-borrower is a customer of their own.
    theirs = await adviser.page(f"/customers/{credit_case['participants'][1]['participantId']}")
    assert credit_case["caseNumber"] in theirs.text and account["caseNumber"] not in theirs.text
    assert (await adviser.page(f"/customers/{uuid.uuid4()}")).status_code == 404


async def test_notes_are_for_staff_only_changed_by_their_author_for_a_while_then_stand(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], people: Opener
) -> None:
    me = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case(settings, credit.CASE_TYPE_CREDIT, [me])
    case_id = case["caseId"]
    page = f"/cases/{case_id}"
    clock = FakeClock()
    analyst = await people(clock)
    await analyst.sign_in("anna.analityk")
    colleague = await people(clock)
    await colleague.sign_in("celina.konsultant")

    text = "Rozmowa z klientem.\nPracodawca potwierdził dochód <b>8200</b> zł."
    added = await analyst.post_form(f"{page}/notes", {"text": text}, page)
    assert added.status_code == 303 and added.headers["location"].endswith("#notes")
    shown = await analyst.page(page)
    # Plain text: line breaks kept, markup shown as typed, never interpreted.
    assert "Pracodawca potwierdził dochód &lt;b&gt;8200&lt;/b&gt; zł." in shown.text
    assert "Rozmowa z klientem.\nPracodawca" in shown.text
    async with sessions() as session:
        note = await session.scalar(
            select(StaffNote).where(StaffNote.case_id == uuid.UUID(case_id))
        )
        assert note is not None and note.author_username == "anna.analityk"
        note_id = note.id
    assert f"/notes/{note_id}/edit" in shown.text
    # Another member of staff sees it but cannot change it.
    theirs = await colleague.page(page)
    assert "Pracodawca potwierdził" in theirs.text and f"/notes/{note_id}/edit" not in theirs.text
    refused = await colleague.post_form(f"/notes/{note_id}", {"text": "changed"}, page)
    assert refused.status_code == 400 and "Only the author may change a note." in refused.text

    # The author corrects it within the window.
    clock.advance(5 * 60)
    corrected = await analyst.post_form(
        f"/notes/{note_id}", {"text": "Pracodawca potwierdził dochód 8200 zł."}, page
    )
    assert corrected.status_code == 303
    assert "(changed " in (await analyst.page(page)).text

    # After the window it stands: the page no longer offers a change, the server refuses one,
    # and what was typed is given back, not lost.
    clock.advance(6 * 60)
    assert f"/notes/{note_id}/edit" not in (await analyst.page(page)).text
    late = await analyst.post_form(f"/notes/{note_id}", {"text": "Too late to say this"}, page)
    assert late.status_code == 400
    assert "can no longer be changed" in late.text and "Too late to say this" in late.text

    # Empty and overlong notes are refused with the text kept.
    empty = await analyst.post_form(f"{page}/notes", {"text": "  \n "}, page)
    assert empty.status_code == 400 and "Write the note before adding it." in empty.text
    long_text = "x" * (MAX_NOTE_CHARS + 1)
    too_long = await analyst.post_form(f"{page}/notes", {"text": long_text}, page)
    assert too_long.status_code == 400 and long_text in too_long.text

    # Participants never see notes.
    async with AsyncTestClient(panel_app(settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        overview = await client.get("/case/")
        assert "Pracodawca" not in overview.text

    # Written and changed notes are audited, with the text's hash, never the text.
    async with sessions() as session:
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.case_id == uuid.UUID(case_id),
                    AuditEvent.event.in_([audit.NOTE_ADDED, audit.NOTE_EDITED]),
                )
                .order_by(AuditEvent.id)
            )
        )
    assert [(e.event, e.staff_id is not None) for e in events] == [
        (audit.NOTE_ADDED, True),
        (audit.NOTE_EDITED, True),
    ]
    assert all("Pracodawca" not in str(e.details) for e in events)


async def test_a_note_on_the_customer_follows_them_to_every_case(
    settings: Settings, people: Opener
) -> None:
    me = person(credit.ROLE_PRIMARY_BORROWER, 0)
    first = await open_case(settings, credit.CASE_TYPE_CREDIT, [me])
    second = await open_case(
        settings,
        "minor-account",
        [{**me, "role": "guardian", "phone": person("guardian", 1)["phone"]}],
    )
    agent = await people()
    await agent.sign_in("celina.konsultant")
    card = f"/customers/{first['participants'][0]['participantId']}"
    added = await agent.post_form(f"{card}/notes", {"text": "Prefers calls after 16:00."}, card)
    assert added.status_code == 303
    other_card = f"/customers/{second['participants'][0]['participantId']}"
    assert "Prefers calls after 16:00." in (await agent.page(other_card)).text
    # A case's notes stay on their case.
    assert "Prefers calls after 16:00." not in (await agent.page(f"/cases/{first['caseId']}")).text


async def test_notes_and_the_card_need_a_signed_in_member_of_staff(
    staff_settings: Settings, settings: Settings
) -> None:
    case = await open_case(
        settings, credit.CASE_TYPE_CREDIT, [person(credit.ROLE_PRIMARY_BORROWER, 0)]
    )
    async with AsyncTestClient(create_app(staff_settings)) as client:
        card = await client.get(
            f"/customers/{case['participants'][0]['participantId']}",
            headers={"accept": "application/json"},
        )
        assert card.status_code == 401
        await client.get("/signed-out")
        token = client.cookies.get("staff-csrftoken") or ""
        posted = await client.post(
            f"/cases/{case['caseId']}/notes",
            data={"text": "x", "_csrf_token": token},
            headers={"accept": "application/json"},
        )
        assert posted.status_code == 401
