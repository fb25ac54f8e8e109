"""Staff find cases by number, customer, type, status, channel and dates; the customer by the
blind index of a PESEL or phone number, never by a PESEL the panel would have kept."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.cases.search import (
    DAY_ZONE,
    MAX_PAGE_SIZE,
    CasePage,
    CaseQuery,
    CaseQueryError,
    CaseSort,
    search_cases,
)
from panel_core.db.models import Case, Participant
from panel_core.identity.pesel import make_pesel, pesel_index
from panel_core.identity.phone import phone_index
from panel_core.settings import Settings
from tests import credit
from tests.helpers import eventually, open_case_via_channel, person

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

# The cases of this module move to days no other case has, oldest first. The last one is
# past midnight in Warsaw but not in UTC, so it tells the bank's days from UTC ones.
CREATED = [
    datetime(2001, 3, 1, 12, 0, tzinfo=DAY_ZONE),
    datetime(2001, 3, 2, 9, 0, tzinfo=DAY_ZONE),
    datetime(2001, 3, 3, 9, 0, tzinfo=DAY_ZONE),
    datetime(2001, 3, 4, 23, 59, tzinfo=DAY_ZONE),
    datetime(2001, 3, 5, 0, 30, tzinfo=DAY_ZONE),
]
BRANCH, APPROVED = 1, 3
VALID_PESEL = make_pesel(date(1980, 1, 1), 1234)
WRONG_CHECK_DIGIT = VALID_PESEL[:10] + str((int(VALID_PESEL[10]) + 1) % 10)


@dataclass
class Opened:
    customer: dict[str, str]
    co_borrower: dict[str, str]
    # Oldest first; case 0 has both participants, BRANCH came through the branch.
    case_ids: list[uuid.UUID]
    numbers: list[str]


async def open_in_branch(settings: Settings, people: list[dict[str, str]]) -> dict[str, Any]:
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.post(
            "/api/channel/cases",
            json={"caseType": credit.CASE_TYPE_CREDIT, "participants": people, "channel": "branch"},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def opened(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Opened:
    customer = person(credit.ROLE_PRIMARY_BORROWER, 0)
    co_borrower = person(credit.ROLE_CO_BORROWER, 1)
    bodies = [await open_case_via_channel(settings, [customer, co_borrower])]
    bodies.append(await open_in_branch(settings, [customer]))
    bodies += [await open_case_via_channel(settings, [customer]) for _ in range(3)]
    case_ids = [uuid.UUID(body["caseId"]) for body in bodies]

    async def invited() -> bool:
        # The process marks the case "collecting" before it invites the participants: once
        # they are invited, no status job of this case overwrites the status set below.
        async with sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(Participant)
                .where(Participant.case_id == case_ids[APPROVED], Participant.invited_at.is_(None))
            )
        return waiting == 0

    await eventually(invited, within=90)
    async with sessions() as session:
        for case_id, created in zip(case_ids, CREATED, strict=True):
            await session.execute(update(Case).where(Case.id == case_id).values(created_at=created))
        await session.execute(
            update(Case).where(Case.id == case_ids[APPROVED]).values(status=credit.STATUS_APPROVED)
        )
        await session.commit()
    return Opened(customer, co_borrower, case_ids, [body["caseNumber"] for body in bodies])


async def search(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, **fields: Any
) -> CasePage:
    async with sessions() as session:
        return await search_cases(session, CaseQuery(**fields), hash_key=settings.hash_key)


def ids(page: CasePage) -> list[uuid.UUID]:
    return [item.case_id for item in page.items]


def newest_first(opened: Opened, *indexes: int) -> list[uuid.UUID]:
    return [opened.case_ids[i] for i in sorted(indexes, reverse=True)]


async def test_a_full_pesel_finds_the_customers_cases_and_no_one_elses(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pesel = opened.customer["pesel"]
    found = await search(sessions, settings, customer=pesel)
    assert ids(found) == newest_first(opened, 0, 1, 2, 3, 4)
    assert found.total == 5
    spaced = await search(sessions, settings, customer=f" {pesel[:6]} {pesel[6:]} ")
    assert ids(spaced) == ids(found)
    co_borrowing = await search(sessions, settings, customer=opened.co_borrower["pesel"])
    assert ids(co_borrowing) == [opened.case_ids[0]]
    first = co_borrowing.items[0]
    assert (first.case_number, first.participant_count) == (opened.numbers[0], 2)
    assert first.case_type == credit.CASE_TYPE_CREDIT and first.channel == "internet-banking"
    assert {item.participant_count for item in found.items[:-1]} == {1}

    someone_else = make_pesel(date(1957, 7, 17), 4321)
    assert someone_else not in {pesel, opened.co_borrower["pesel"]}
    nobody = await search(sessions, settings, customer=someone_else)
    assert (nobody.items, nobody.total, nobody.pages) == ([], 0, 0)


@pytest.mark.parametrize(
    "term",
    [
        "12345678901",  # 11 digits, but month 34 encodes no month
        WRONG_CHECK_DIGIT,
        "8001011234",  # 10 digits: neither a PESEL nor a phone number
        "Kowalski",
        "+48 12",
    ],
)
async def test_a_term_that_is_neither_a_pesel_nor_a_phone_is_an_error(
    term: str, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(CaseQueryError) as error:
        await search(sessions, settings, customer=term)
    assert "PESEL" in str(error.value)


async def test_a_phone_number_finds_the_case_however_it_is_written(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    national = opened.co_borrower["phone"].removeprefix("+48")
    spellings = [
        f"+48 {national[:3]} {national[3:6]} {national[6:]}",
        national,
        f"0048{national}",
        f"{national[:3]}-{national[3:6]}-{national[6:]}",
    ]
    for spelling in spellings:
        found = await search(sessions, settings, customer=spelling)
        assert ids(found) == [opened.case_ids[0]], spelling
    customers = await search(sessions, settings, customer=opened.customer["phone"])
    assert customers.total == 5


async def test_a_case_number_is_found_exactly_once_normalised_or_by_its_start(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    number = opened.numbers[2]
    exact = await search(sessions, settings, case_number=number)
    assert ids(exact) == [opened.case_ids[2]]
    assert exact.items[0].case_number == number
    typed = f"  {number[:8].lower()} {number[8:].lower()} "
    assert ids(await search(sessions, settings, case_number=typed)) == [opened.case_ids[2]]
    start = await search(sessions, settings, case_number=number[:-2], page_size=MAX_PAGE_SIZE)
    assert opened.case_ids[2] in ids(start)
    assert all(item.case_number.startswith(number[:-2]) for item in start.items)
    narrowed = await search(
        sessions, settings, case_number=number[:-2], customer=opened.customer["pesel"]
    )
    assert ids(narrowed) == [opened.case_ids[2]]
    with pytest.raises(CaseQueryError):
        await search(sessions, settings, case_number="KR-20%")


async def test_filters_by_type_status_and_channel(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pesel = opened.customer["pesel"]
    of_type = await search(
        sessions, settings, customer=pesel, case_types=(credit.CASE_TYPE_CREDIT,)
    )
    assert of_type.total == 5
    approved = await search(sessions, settings, customer=pesel, statuses=(credit.STATUS_APPROVED,))
    assert ids(approved) == [opened.case_ids[APPROVED]]
    assert approved.items[0].status == credit.STATUS_APPROVED
    assert approved.items[0].process_instance_key is not None
    collecting = await search(
        sessions, settings, customer=pesel, statuses=(credit.STATUS_COLLECTING,)
    )
    assert ids(collecting) == newest_first(opened, 0, 1, 2, 4)
    either = await search(
        sessions,
        settings,
        customer=pesel,
        statuses=(credit.STATUS_COLLECTING, credit.STATUS_APPROVED),
    )
    assert either.total == 5
    branch = await search(sessions, settings, customer=pesel, channels=("branch",))
    assert ids(branch) == [opened.case_ids[BRANCH]]
    assert branch.items[0].channel == "branch"
    online = await search(sessions, settings, customer=pesel, channels=("internet-banking",))
    assert ids(online) == newest_first(opened, 0, 2, 3, 4)
    for unknown in (
        {"case_types": ("mortgage",)},
        {"statuses": ("lost",)},
        {"channels": ("fax",)},
    ):
        with pytest.raises(CaseQueryError):
            await search(sessions, settings, **unknown)


async def test_a_date_range_takes_the_banks_whole_days_at_both_ends(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # No other filter: no other case was opened in 2001.
    middle = await search(
        sessions, settings, created_from=date(2001, 3, 2), created_to=date(2001, 3, 4)
    )
    assert ids(middle) == newest_first(opened, 1, 2, 3)
    pesel = opened.customer["pesel"]
    since = await search(sessions, settings, customer=pesel, created_from=date(2001, 3, 5))
    assert ids(since) == [opened.case_ids[4]]
    until = await search(sessions, settings, customer=pesel, created_to=date(2001, 3, 1))
    assert ids(until) == [opened.case_ids[0]]
    with pytest.raises(CaseQueryError):
        await search(sessions, settings, created_from=date(2001, 3, 5), created_to=date(2001, 3, 1))


async def test_pages_of_a_filtered_list_and_their_totals(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pesel = opened.customer["pesel"]
    pages = [
        await search(sessions, settings, customer=pesel, page=n, page_size=2) for n in (1, 2, 3, 4)
    ]
    assert [ids(p) for p in pages] == [
        newest_first(opened, 3, 4),
        newest_first(opened, 1, 2),
        [opened.case_ids[0]],
        [],
    ]
    assert {(p.total, p.pages, p.page_size) for p in pages} == {(5, 3, 2)}
    assert [p.has_next for p in pages] == [True, True, False, False]
    in_range = await search(
        sessions,
        settings,
        created_from=date(2001, 3, 1),
        created_to=date(2001, 3, 5),
        page=2,
        page_size=2,
        sort=CaseSort.OLDEST,
    )
    assert ids(in_range) == [opened.case_ids[2], opened.case_ids[3]]
    assert (in_range.total, in_range.page, in_range.pages) == (5, 2, 3)
    capped = await search(sessions, settings, customer=pesel, page_size=1000)
    assert capped.page_size == MAX_PAGE_SIZE and capped.total == 5
    with pytest.raises(CaseQueryError):
        await search(sessions, settings, customer=pesel, page=0)


async def test_the_database_keeps_no_pesel_and_no_phone_number_but_the_one_for_sms(
    opened: Opened, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    people = [opened.customer, opened.co_borrower]
    async with sessions() as session:
        rows = (
            (
                await session.execute(
                    text("SELECT * FROM participant WHERE case_id = :case_id ORDER BY ordinal"),
                    {"case_id": opened.case_ids[0]},
                )
            )
            .mappings()
            .all()
        )
        assert [row["ordinal"] for row in rows] == [0, 1]
        for row, someone in zip(rows, people, strict=True):
            pesel, phone = someone["pesel"], someone["phone"]
            assert row["pesel_index"] == pesel_index(settings.hash_key, pesel)
            # Keyed: not the plain hash anyone could compute for every PESEL.
            assert row["pesel_index"] != hashlib.sha256(pesel.encode()).hexdigest()
            assert row["phone_index"] == phone_index(settings.hash_key, phone)
            assert row["phone_e164"] == phone
            elsewhere = {k: v for k, v in row.items() if k != "phone_e164"}
            assert not [k for k, v in elsewhere.items() if phone.removeprefix("+48") in str(v)]
            assert not [k for k, v in row.items() if pesel in str(v)]
        tables = (
            await session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ).all()
        assert "participant" in tables
        for person_ in people:
            for table in tables:
                # The table names come from the catalogue, not from outside.
                rows_holding = f'SELECT count(*) FROM "{table}" AS r WHERE r::text LIKE :p'  # noqa: S608
                holding = await session.scalar(text(rows_holding), {"p": f"%{person_['pesel']}%"})
                assert holding == 0, f"a PESEL in table {table}"
        indexed = await session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.case_id.in_(opened.case_ids), Participant.pesel_index.is_(None))
        )
        assert indexed == 0
