"""The chat's rules where they fail or hold back: the SMS to a participant who has not read
the bank's answer, the rate limit, the retention purge and the export of a case's
conversations.

Against the session's real PostgreSQL and Redis. The cases are registered directly, with no
process behind them. The SMS rules run the job themselves on a fake clock set years ahead,
so the workers' own loop (which runs on the real clock) never takes their conversations;
one test lets the workers' loop send the SMS, as in production.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.ports import free_port
from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.cases import closure
from panel_core.cases.case_types import AfterClosure
from panel_core.cases.closure import as_datetime
from panel_core.cases.export import case_export
from panel_core.cases.numbers import generate_case_number
from panel_core.cases.retention import RetentionJob
from panel_core.clock import FakeClock
from panel_core.conversations import service
from panel_core.conversations.away import AwaySmsJob
from panel_core.db.models import (
    AuditEvent,
    Case,
    Conversation,
    ConversationMessage,
    Participant,
    SmsMessage,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.identity.actors import ParticipantActor, StaffActor
from panel_core.identity.pesel import fragment_hash, make_pesel, pesel_index
from panel_core.settings import Settings
from tests import credit
from tests.conftest import REPO_ROOT, Stack, settings_env
from tests.helpers import eventually
from tests.sms_inbox import messages_to

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

DAY = 86400.0
# Years ahead of the real clock: the workers' loop never finds these answers due.
FUTURE = time.time() + 20 * 365 * DAY
AFTER = 900.0
GAP = 3600.0
QUESTION = "Jakie zaświadczenie o dochodach mam przesłać?"
ANSWER = "Zaświadczenie od pracodawcy z ostatnich 3 miesięcy, poufne 4471."

STAFF = StaffActor(
    subject="s-chat-core",
    username="chat-core.analyst",
    name="Celestyna Analityk",
    groups=frozenset({"credit-analysts"}),
    roles=frozenset(),
)


class Person(msgspec.Struct):
    case_id: uuid.UUID
    case_number: str
    participant_id: uuid.UUID
    phone: str | None

    @property
    def actor(self) -> ParticipantActor:
        return ParticipantActor(self.case_id, self.participant_id)


def away_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings, chat_away_sms_after_seconds=AFTER, chat_away_sms_gap_seconds=GAP
    )


async def registered(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, phone: bool = True
) -> Person:
    """A credit case with one applicant, who may sign in (or not: no phone)."""
    pesel = make_pesel(date(1981, 3, 9), 1000 + secrets.randbelow(8000))
    number = f"+4857{secrets.randbelow(10**7):07d}" if phone else None
    case_id, participant_id = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session:
        case = Case(
            id=case_id,
            case_number=generate_case_number("KR"),
            case_type=credit.CASE_TYPE_CREDIT,
            channel="branch",
            status=credit.STATUS_COLLECTING,
            process_id=credit.PROCESS_ID_CREDIT,
            process_instance_key=secrets.randbelow(10**12) + 10**12,
        )
        session.add(case)
        await session.flush()
        session.add(
            Participant(
                id=participant_id,
                case_id=case_id,
                role=credit.ROLE_CO_BORROWER,
                ordinal=1,
                phone_e164=number,
                pesel_fragment_hash=fragment_hash(
                    settings.hash_key, case_id, pesel[-settings.pesel_fragment_length :]
                ),
                pesel_index=pesel_index(settings.hash_key, pesel),
                locale="pl",
            )
        )
        await session.commit()
        return Person(case_id, case.case_number, participant_id, number)


async def ask(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, person: Person, at: float
) -> uuid.UUID:
    async with sessions() as session:
        # Half a minute before ``at``: an answer at ``at`` comes after it.
        conversation = await service.start(
            session, person.actor, QUESTION, settings=settings, now=as_datetime(at - 30)
        )
        await session.commit()
        return conversation.id


async def answer(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    conversation_id: uuid.UUID,
    at: float,
    text: str = ANSWER,
    redis: Redis | None = None,
) -> None:
    async with sessions() as session:
        conversation = await service.find(session, STAFF, conversation_id, lock=True)
        assert conversation is not None
        await service.post(
            session, STAFF, conversation, text, settings=settings, now=as_datetime(at), redis=redis
        )
        await session.commit()


async def waiting_sms(
    sessions: async_sessionmaker[AsyncSession], person: Person
) -> list[SmsMessage]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(SmsMessage)
                .where(
                    SmsMessage.participant_id == person.participant_id,
                    SmsMessage.purpose == c.SMS_MESSAGE_WAITING,
                )
                .order_by(SmsMessage.created_at)
            )
        )


async def sms_audits(sessions: async_sessionmaker[AsyncSession], person: Person) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.case_id == person.case_id,
                    AuditEvent.event == audit.CONVERSATION_SMS_SENT,
                )
            )
            or 0
        )


# The SMS to a participant who is away.


async def test_an_unread_answer_brings_one_sms_naming_the_case_never_the_message(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE)
    job = AwaySmsJob(sessions, settings, clock)
    person = await registered(sessions, settings)
    conversation = await ask(sessions, settings, person, clock.now())
    clock.advance(60)
    await answer(sessions, settings, conversation, clock.now())

    # Not yet: the participant may still be reading the panel.
    clock.advance(AFTER - 1)
    assert conversation not in (await job.run_once()).sent
    assert await waiting_sms(sessions, person) == []

    clock.advance(1)
    assert conversation in (await job.run_once()).sent
    [sms] = await waiting_sms(sessions, person)
    assert sms.phone_e164 == person.phone
    assert sms.body is not None and person.case_number in sms.body
    assert "4471" not in sms.body and "pracodawcy" not in sms.body
    assert await sms_audits(sessions, person) == 1

    # The next runs queue nothing more for the same answer.
    clock.advance(GAP * 3)
    assert conversation not in (await job.run_once()).sent
    assert len(await waiting_sms(sessions, person)) == 1


async def test_answers_within_the_hour_bring_no_second_sms_until_the_hour_has_passed(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 10 * DAY)
    job = AwaySmsJob(sessions, settings, clock)
    person = await registered(sessions, settings)
    conversation = await ask(sessions, settings, person, clock.now())
    await answer(sessions, settings, conversation, clock.now())
    clock.advance(AFTER)
    first_sms_at = clock.now()
    assert conversation in (await job.run_once()).sent

    # A second answer ten minutes later, unread too.
    clock.advance(600)
    await answer(sessions, settings, conversation, clock.now(), "I jeszcze jedno.")
    clock.advance(AFTER)
    assert conversation not in (await job.run_once()).sent
    assert len(await waiting_sms(sessions, person)) == 1

    clock.advance(first_sms_at + GAP - 1 - clock.now())
    assert conversation not in (await job.run_once()).sent
    clock.advance(1)
    assert conversation in (await job.run_once()).sent
    assert len(await waiting_sms(sessions, person)) == 2
    clock.advance(GAP * 2)
    assert conversation not in (await job.run_once()).sent
    assert len(await waiting_sms(sessions, person)) == 2


async def test_an_answer_read_in_time_brings_no_sms(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 20 * DAY)
    job = AwaySmsJob(sessions, settings, clock)
    person = await registered(sessions, settings)
    conversation_id = await ask(sessions, settings, person, clock.now())
    await answer(sessions, settings, conversation_id, clock.now())
    clock.advance(AFTER - 10)
    async with sessions() as session:
        conversation = await service.find(session, person.actor, conversation_id)
        assert conversation is not None
        service.mark_read(person.actor, conversation, as_datetime(clock.now()))
        await session.commit()
    clock.advance(GAP * 2)
    assert conversation_id not in (await job.run_once()).sent
    assert await waiting_sms(sessions, person) == []

    # A later answer, left unread, does bring one.
    await answer(sessions, settings, conversation_id, clock.now(), "Proszę jeszcze o PIT.")
    clock.advance(AFTER)
    assert conversation_id in (await job.run_once()).sent
    assert len(await waiting_sms(sessions, person)) == 1


async def test_two_jobs_at_once_queue_one_sms(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 30 * DAY)
    people = [await registered(sessions, settings) for _ in range(4)]
    conversations = []
    for person in people:
        conversation = await ask(sessions, settings, person, clock.now())
        await answer(sessions, settings, conversation, clock.now())
        conversations.append(conversation)
    clock.advance(AFTER)
    reports = await asyncio.gather(
        AwaySmsJob(sessions, settings, clock).run_once(),
        AwaySmsJob(sessions, settings, clock).run_once(),
    )
    sent = [i for report in reports for i in report.sent if i in conversations]
    assert sorted(sent) == sorted(conversations)
    for person in people:
        assert len(await waiting_sms(sessions, person)) == 1
        assert await sms_audits(sessions, person) == 1


class FailingAfterQueueing(AwaySmsJob):
    """Fails after the SMS went into the outbox, within the transaction (a lost connection
    at the commit, say)."""

    async def _tell(self, session: AsyncSession, conversation: Conversation) -> bool:
        await super()._tell(session, conversation)
        await session.flush()
        raise ConnectionError("database connection lost")


async def test_a_failure_mid_transaction_queues_nothing_and_the_next_run_sends_it(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 40 * DAY)
    person = await registered(sessions, settings)
    conversation_id = await ask(sessions, settings, person, clock.now())
    await answer(sessions, settings, conversation_id, clock.now())
    clock.advance(AFTER)

    failed = await FailingAfterQueueing(sessions, settings, clock).run_once()
    assert conversation_id in failed.failed and conversation_id not in failed.sent
    assert await waiting_sms(sessions, person) == []
    assert await sms_audits(sessions, person) == 0
    async with sessions() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.away_sms_at is None

    resumed = await AwaySmsJob(sessions, settings, clock).run_once()
    assert conversation_id in resumed.sent
    assert len(await waiting_sms(sessions, person)) == 1


async def test_nobody_to_tell_is_dropped_without_sms_and_not_tried_again(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 50 * DAY)
    job = AwaySmsJob(sessions, settings, clock)
    no_phone = await registered(sessions, settings, phone=False)
    ended = await registered(sessions, settings)
    without_phone = await ask(sessions, settings, no_phone, clock.now())
    access_ended = await ask(sessions, settings, ended, clock.now())
    for conversation in (without_phone, access_ended):
        await answer(sessions, settings, conversation, clock.now())
    async with sessions() as session:
        case = await session.get(Case, ended.case_id)
        assert case is not None
        # Closed with no access left: the Messages area is gone for them.
        closure.close(
            case,
            AfterClosure(access_days=0, shows="everything", purge_after_days=30),
            as_datetime(clock.now()),
        )
        await session.commit()
    clock.advance(AFTER)
    report = await job.run_once()
    assert {without_phone, access_ended} <= set(report.dropped)
    assert not {without_phone, access_ended} & set(report.sent + report.failed)
    assert await waiting_sms(sessions, no_phone) == []
    assert await waiting_sms(sessions, ended) == []

    clock.advance(GAP * 2)
    again = await job.run_once()
    assert not {without_phone, access_ended} & set(again.sent + again.dropped + again.failed)


async def test_a_case_closed_to_documents_only_brings_no_sms_either(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = away_settings(stack.settings)
    clock = FakeClock(FUTURE + 60 * DAY)
    person = await registered(sessions, settings)
    conversation = await ask(sessions, settings, person, clock.now())
    await answer(sessions, settings, conversation, clock.now())
    async with sessions() as session:
        case = await session.get(Case, person.case_id)
        assert case is not None
        closure.close(
            case,
            AfterClosure(access_days=30, shows="documents", purge_after_days=90),
            as_datetime(clock.now()),
        )
        await session.commit()
        # Conversations are part of "everything" only: not of what a closed case shows.
        assert not closure.covers(closure.DOCUMENTS, closure.EVERYTHING)
        assert not closure.covers(closure.STATUS, closure.EVERYTHING)
    clock.advance(AFTER)
    assert conversation in (await AwaySmsJob(sessions, settings, clock).run_once()).dropped
    assert await waiting_sms(sessions, person) == []


async def test_the_workers_send_the_sms_of_an_unread_answer(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The stack's workers run with a two-second delay (tests/conftest.py), on the real clock.
    settings = stack.settings
    assert settings.chat_away_sms_after_seconds <= 5
    person = await registered(sessions, settings)
    assert person.phone is not None
    conversation = await ask(sessions, settings, person, time.time())
    await answer(sessions, settings, conversation, time.time())

    async def delivered() -> list[dict[str, Any]]:
        return [
            m
            for m in await messages_to(settings.redis_url, person.phone or "")
            if person.case_number in str(m["text"])
        ]

    await eventually(delivered, within=30)
    [sms] = await delivered()
    assert "4471" not in str(sms["text"])
    # Later rounds of the loop send no second one for the same answer.
    await asyncio.sleep(settings.chat_away_sms_interval_seconds * 4)
    assert len(await delivered()) == 1
    [queued] = await waiting_sms(sessions, person)
    assert queued.state.value == "sent"


# The rate limit.


async def test_the_eleventh_message_in_a_window_is_refused_and_the_next_window_accepts(
    stack: Stack,
) -> None:
    settings = stack.settings
    limit, window = settings.chat_rate_limit_messages, settings.chat_rate_limit_window_seconds
    participant = uuid.uuid4()
    start = (time.time() // window) * window
    redis = Redis.from_url(settings.redis_url)
    try:
        for index in range(limit):
            await service.check_rate(redis, participant, settings, start + index)
        with pytest.raises(service.ConversationError) as refused:
            await service.check_rate(redis, participant, settings, start + window - 1)
        assert refused.value.message == service.TOO_MANY_MESSAGES
        assert refused.value.text()
        # Another participant is not held back by this one.
        await service.check_rate(redis, uuid.uuid4(), settings, start + 1)
        # The next window starts afresh.
        for index in range(limit):
            await service.check_rate(redis, participant, settings, start + window + index)
        with pytest.raises(service.ConversationError):
            await service.check_rate(redis, participant, settings, start + window + limit)
        # The counters expire on their own.
        ttl = await redis.ttl(service.rate_key(participant, int(start // window)))
        assert 0 < ttl <= window * 2
    finally:
        await redis.aclose()


async def test_without_redis_the_message_goes_through(stack: Stack) -> None:
    settings = stack.settings
    down = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    participant = uuid.uuid4()
    try:
        for _ in range(settings.chat_rate_limit_messages + 5):
            await service.check_rate(down, participant, settings, time.time())
    finally:
        await down.aclose()


# Retention and export.


async def a_conversation_with_the_bank(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, person: Person, at: float
) -> tuple[uuid.UUID, uuid.UUID]:
    """One conversation the FAQ answered, one the bank answered, and a follow-up."""
    async with sessions() as session:
        faq = await service.resolve_by_faq(
            session,
            person.actor,
            "Dlaczego bank pyta o PESEL?",
            1,
            role=credit.ROLE_CO_BORROWER,
            settings=settings,
            now=as_datetime(at),
        )
        await session.commit()
        faq_id = faq.id
    asked = await ask(sessions, settings, person, at + 31)
    await answer(sessions, settings, asked, at + 2)
    async with sessions() as session:
        conversation = await service.find(session, person.actor, asked, lock=True)
        assert conversation is not None
        await service.post(
            session,
            person.actor,
            conversation,
            "Dziękuję, wyślę jutro.",
            settings=settings,
            now=as_datetime(at + 3),
        )
        await session.commit()
    return faq_id, asked


async def chat_rows(sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> int:
    async with sessions() as session:
        conversations = await session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.case_id == case_id)
        )
        messages = await session.scalar(
            select(func.count())
            .select_from(ConversationMessage)
            .where(ConversationMessage.case_id == case_id)
        )
        return int(conversations or 0) + int(messages or 0)


async def purge_audit(sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> Any:
    async with sessions() as session:
        event = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.case_id == case_id, AuditEvent.event == audit.CASE_PURGED
            )
        )
        assert event is not None
        return event.details


@pytest.mark.parametrize("purged", [True, False])
async def test_the_purge_removes_the_conversations_only_when_its_rule_names_them(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], purged: bool
) -> None:
    settings = stack.settings
    clock = FakeClock()
    person = await registered(sessions, settings)
    await a_conversation_with_the_bank(sessions, settings, person, clock.now() - 60)
    # Two conversations, four messages.
    assert await chat_rows(sessions, person.case_id) == 6
    kinds = ("documents", "answers", "drafts", "identity", "phones")
    rule = AfterClosure(
        access_days=0, purge_after_days=0, purge=(*kinds, "conversations") if purged else kinds
    )
    async with sessions() as session:
        case = await session.get(Case, person.case_id)
        assert case is not None
        closure.close(case, rule, as_datetime(clock.now()))
        await session.commit()
    clock.advance(1)
    storage = LocalDiskStorage(settings.document_storage_dir)
    assert person.case_number in (await RetentionJob(sessions, storage, clock).run_once()).purged
    details = await purge_audit(sessions, person.case_id)
    if purged:
        assert await chat_rows(sessions, person.case_id) == 0
        assert "conversations" in details["kinds"]
        assert details["removed"]["conversations"] == 6
    else:
        assert await chat_rows(sessions, person.case_id) == 6
        assert "conversations" not in details["kinds"]
        assert "conversations" not in details["removed"]


async def test_the_export_holds_the_conversations_in_order_with_authors_and_the_faq(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = stack.settings
    person = await registered(sessions, settings)
    faq_id, asked = await a_conversation_with_the_bank(sessions, settings, person, time.time() - 60)
    async with sessions() as session:
        exported = await case_export(session, person.case_id)
    assert exported is not None
    conversations = exported["conversations"]
    assert [c["id"] for c in conversations] == [str(faq_id), str(asked)]
    by_faq, by_bank = conversations
    assert by_faq["resolution"] == "faq" and by_faq["faqEntry"] == 1
    assert by_faq["state"] == "closed"
    assert [m["author"] for m in by_faq["messages"]] == ["participant"]
    assert by_bank["resolution"] == "bank" and by_bank["assignee"] == STAFF.username
    assert by_bank["participant"] == str(person.participant_id)
    assert [(m["author"], m["staff"], m["text"]) for m in by_bank["messages"]] == [
        ("participant", None, QUESTION),
        ("staff", STAFF.username, ANSWER),
        ("participant", None, "Dziękuję, wyślę jutro."),
    ]
    assert by_bank["messages"][1]["staffName"] == STAFF.name
    sent = [m["sentAt"] for m in by_bank["messages"]]
    assert sent == sorted(sent)
    # Every message is in the audit part by author and digest, never by text.
    logged = [e for e in exported["audit"] if e["event"] == audit.CONVERSATION_MESSAGE]
    assert len(logged) == 4
    assert all(len(e["details"]["sha256"]) == 64 for e in logged)
    assert ANSWER not in json.dumps(exported["audit"], ensure_ascii=False)


def run_cli(stack: Stack, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panel_core.cli", *arguments],
        cwd=REPO_ROOT,
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_export_command_writes_the_case_and_is_audited(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = stack.settings
    person = await registered(sessions, settings)
    _, asked = await a_conversation_with_the_bank(sessions, settings, person, time.time() - 60)
    target = tmp_path / "case.json"

    done = await asyncio.to_thread(
        run_cli, stack, "export", person.case_number.lower(), "--output", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert f"exported: {person.case_number.lower()}" in done.stdout
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written["case"]["caseNumber"] == person.case_number
    assert str(asked) in [c["id"] for c in written["conversations"]]
    assert "Dziękuję, wyślę jutro." in target.read_text(encoding="utf-8")

    to_stdout = await asyncio.to_thread(run_cli, stack, "export", person.case_number)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["case"]["id"] == str(person.case_id)

    async with sessions() as session:
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.case_id == person.case_id,
                    AuditEvent.event == audit.CASE_EXPORTED,
                )
                .order_by(AuditEvent.id)
            )
        )
    assert [(e.actor_kind, e.details) for e in events] == [
        ("system", {"via": "cli", "output": str(target.resolve())}),
        ("system", {"via": "cli", "output": "stdout"}),
    ]

    unknown = await asyncio.to_thread(run_cli, stack, "export", generate_case_number("KR"))
    assert unknown.returncode == 2 and "no case" in unknown.stderr
