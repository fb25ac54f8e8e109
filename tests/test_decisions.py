"""Decisions reach the participants: one SMS each in their language, and the overview.

Against the session's real PostgreSQL, Redis, engine and workers process: the workers' SMS
dispatcher (demo provider) delivers what the outbox queues, so the tests read each phone.
"""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.cases.numbers import generate_case_number
from panel_core.cases.service import set_case_status
from panel_core.db.models import AuditEvent, Case, PanelTask, Participant, SmsMessage
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    engine_post,
    eventually,
    forms_done_until_signing,
    open_case_via_channel,
    person,
    sign_in,
    sign_task,
)
from tests.sms_inbox import message_naming, messages_naming
from tests.test_engine_loop import process_ended

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

REASON = "Stały dochód i dobra historia kredytowa."


def phone() -> str:
    return f"+4851{uuid.uuid4().int % 10**7:07d}"


async def registered_case(
    sessions: async_sessionmaker[AsyncSession], *people: tuple[str, str | None]
) -> Case:
    """A case as a channel registers it, (locale, phone) per participant, held at
    "collecting" with no process behind it: only the tests move its status."""
    async with sessions() as session:
        case = Case(
            id=uuid.uuid4(),
            case_number=generate_case_number("KR"),
            case_type=credit.CASE_TYPE_CREDIT,
            channel="branch",
            status=credit.STATUS_COLLECTING,
            process_id=credit.PROCESS_ID_CREDIT,
        )
        case.participants = [
            Participant(
                id=uuid.uuid4(),
                role=credit.ROLE_PRIMARY_BORROWER if ordinal == 0 else credit.ROLE_CO_BORROWER,
                ordinal=ordinal,
                phone_e164=number,
                locale=locale,
            )
            for ordinal, (locale, number) in enumerate(people)
        ]
        session.add(case)
        await session.commit()
        await session.refresh(case, ["participants"])
        return case


async def set_status(
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    case: Case,
    status: str,
    reason: str | None = None,
) -> None:
    """What the workers do with a "Mark case" job, in a transaction of its own."""
    async with sessions() as session:
        assert await set_case_status(
            session, case.id, status, reason, base_url=stack.settings.public_base_url
        )
        await session.commit()


async def decision_messages(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> list[SmsMessage]:
    async with sessions() as session:
        found = await session.scalars(
            select(SmsMessage).where(
                SmsMessage.case_id == case_id, SmsMessage.purpose == c.SMS_DECISION
            )
        )
        return list(found)


async def test_a_final_status_texts_each_participant_once_in_their_own_language(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    polish, english = phone(), phone()
    case = await registered_case(sessions, ("pl", polish), ("en", english), ("pl", None))
    redis = stack.settings.redis_url

    await set_status(stack, sessions, case, credit.STATUS_APPROVED, REASON)
    # Zeebe delivers the job again (a lost answer, a worker restart): nobody is texted twice.
    await set_status(stack, sessions, case, credit.STATUS_APPROVED, REASON)

    link = f"{stack.settings.public_base_url}/login?case={case.case_number}"
    text_pl = await message_naming(redis, polish, case.case_number)
    assert text_pl == (
        f"Decyzja w Twojej sprawie {case.case_number}: Kredyt przyznany. "
        f"Doradca zadzwoni do Ciebie. Zobacz: {link}"
    )
    text_en = await message_naming(redis, english, case.case_number)
    assert text_en == (
        f"Decision on your case {case.case_number}: Credit approved. "
        f"An adviser will call you. Details: {link}"
    )
    # The reason stays in the panel: a phone number the bank typed in may not be theirs now.
    assert REASON not in text_pl
    sent = await decision_messages(sessions, case.id)
    with_phone = [p.id for p in case.participants if p.phone_e164]
    assert sorted(m.participant_id for m in sent if m.participant_id) == sorted(with_phone)
    assert {m.locale for m in sent} == {"pl", "en"}
    async with sessions() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None and stored.status_reason == REASON
        recorded = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.case_id == case.id, AuditEvent.event == audit.DECISION_SENT)
        )
    assert recorded == 1
    # Each phone got its decision once, however often the status was set.
    assert len(await messages_naming(redis, polish, case.case_number)) == 1
    assert len(await messages_naming(redis, english, case.case_number)) == 1


async def test_a_changed_decision_does_not_text_anyone_a_second_time(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    number = phone()
    case = await registered_case(sessions, ("pl", number))
    await set_status(stack, sessions, case, credit.STATUS_REJECTED)
    await set_status(stack, sessions, case, credit.STATUS_APPROVED)
    assert len(await decision_messages(sessions, case.id)) == 1
    text = await message_naming(stack.settings.redis_url, number, case.case_number)
    assert "Kredyt nieprzyznany. Uzasadnienie otrzymasz listownie." in text


async def test_a_status_that_decides_nothing_texts_nobody(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await registered_case(sessions, ("pl", phone()), ("en", phone()))
    await set_status(stack, sessions, case, credit.STATUS_IN_REVIEW, "Sprawdzamy dochody.")
    assert await decision_messages(sessions, case.id) == []
    async with sessions() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None
        assert (stored.status, stored.status_reason) == (
            credit.STATUS_IN_REVIEW,
            "Sprawdzamy dochody.",
        )
    # A later status without a reason does not keep the earlier one.
    await set_status(stack, sessions, case, credit.STATUS_COLLECTING)
    async with sessions() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None and stored.status_reason is None


async def overview_of(stack: Stack, participant_id: uuid.UUID, language: str = "pl") -> str:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, str(participant_id))
        if language != "pl":
            await client.get(f"/language/{language}?next=/case/", follow_redirects=False)
        page = await client.get("/case/")
    assert page.status_code == 200, page.text
    return page.text


async def test_the_overview_gives_the_decision_and_the_reason_the_case_type_allows(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    approved = await registered_case(sessions, ("pl", phone()))
    await set_status(stack, sessions, approved, credit.STATUS_APPROVED, REASON)
    page = await overview_of(stack, approved.participants[0].id)
    assert '<h2 id="status-title" class="status-panel__label">Decyzja</h2>' in page
    assert "<strong>Kredyt przyznany</strong>" in page
    assert "Doradca skontaktuje się z Tobą, aby umówić podpisanie umowy." in page
    assert f"<strong>Uzasadnienie decyzji:</strong> {REASON}" in page
    assert "Sprawa jest zakończona. Nie musisz już nic robić." in page
    english = await overview_of(stack, approved.participants[0].id, "en")
    assert ">Decision</h2>" in english and "<strong>Credit approved</strong>" in english
    assert f"<strong>Reason for the decision:</strong> {REASON}" in english

    rejected = await registered_case(sessions, ("pl", phone()))
    await set_status(stack, sessions, rejected, credit.STATUS_REJECTED, "Zbyt niski dochód.")
    page = await overview_of(stack, rejected.participants[0].id)
    assert ">Decyzja</h2>" in page and "<strong>Kredyt nieprzyznany</strong>" in page
    assert "Uzasadnienie decyzji otrzymasz listownie." in page
    # Rejections' reasons go by post: the bank's words for them never reach the page.
    assert "Zbyt niski dochód." not in page and "Uzasadnienie decyzji:" not in page


async def test_the_analysts_decision_ends_the_case_and_reaches_the_participant(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    me = person(credit.ROLE_PRIMARY_BORROWER, 0, locale="en")
    case = await open_case_via_channel(stack.settings, [me])
    case_id = uuid.UUID(case["caseId"])
    participant_id = case["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, participant_id)
        signing = await forms_done_until_signing(client)
        signed = await sign_task(client, signing["id"], me["phone"], stack.settings.redis_url)
        assert signed.status_code == 202, signed.text

    async def analyst_task() -> PanelTask | None:
        async with sessions() as session:
            found: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == case_id,
                    PanelTask.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW,
                )
            )
        return found

    review = await eventually(analyst_task, within=60)
    reason = "Income and credit history meet the criteria."
    # The analyst decides in a Camunda task list, straight through the engine.
    done = await engine_post(
        f"{stack.settings.camunda_rest_url}/v2/user-tasks/{review.user_task_key}/completion",
        {"variables": {credit.VAR_DECISION: credit.DECISION_APPROVED, "decisionReason": reason}},
    )
    assert done.status_code == 204, done.text

    async def finished() -> Case | None:
        async with sessions() as session:
            found = await session.get(Case, case_id)
        return found if found and found.status == credit.STATUS_APPROVED else None

    ended = await eventually(finished, within=30)
    assert ended.status_reason == reason
    key = ended.process_instance_key
    assert key is not None

    async def process_is_over() -> bool:
        return await process_ended(stack.settings.redis_url, key)

    await eventually(process_is_over, within=30)
    text = await message_naming(stack.settings.redis_url, me["phone"], "Decision on your case")
    assert text.startswith(f"Decision on your case {case['caseNumber']}: Credit approved.")
    [sent] = await decision_messages(sessions, case_id)
    assert str(sent.participant_id) == participant_id and sent.locale == "en"
    page = await overview_of(stack, uuid.UUID(participant_id), "en")
    assert f"<strong>Reason for the decision:</strong> {reason}" in page
