"""Conversations for the dashboard's tests: a real credit case whose participant has sent
the proof of income, and questions asked through the domain service as the panel asks
them (the panel's own pages are tested on their own)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from panel_core.conversations import service
from panel_core.db.session import create_engine, create_session_factory
from panel_core.identity.actors import ParticipantActor
from panel_core.settings import Settings
from tests import credit
from tests.helpers import open_case_via_channel, open_tasks, person, sign_in, upload_document

INCOME_PROOF = "zaswiadczenie-o-dochodach.pdf"


@dataclass(frozen=True)
class ChatCase:
    case_id: uuid.UUID
    case_number: str
    participant: dict[str, str]
    actor: ParticipantActor
    income_task_id: uuid.UUID


async def chat_case(settings: Settings, locale: str = "pl") -> ChatCase:
    """A credit case at its first step, its borrower's proof of income uploaded."""
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0, locale)
    opened = await open_case_via_channel(settings, [borrower])
    participant_id = opened["participants"][0]["participantId"]
    async with AsyncTestClient(panel_app(settings)) as client:
        await sign_in(client, participant_id)
        tasks = await open_tasks(client, 3)
        income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
        uploaded = await upload_document(client, income["id"], "incomeProof", INCOME_PROOF)
        assert uploaded.status_code == 201, uploaded.text
    return ChatCase(
        case_id=uuid.UUID(opened["caseId"]),
        case_number=opened["caseNumber"],
        participant=borrower,
        actor=ParticipantActor(uuid.UUID(opened["caseId"]), uuid.UUID(participant_id)),
        income_task_id=uuid.UUID(income["id"]),
    )


async def ask(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    case: ChatCase,
    text: str,
    *,
    about_income: bool = True,
    redis: Redis | None = None,
) -> uuid.UUID:
    """The participant's new question, from the income task's page or the Messages area."""
    async with sessions() as session:
        conversation = await service.start(
            session,
            case.actor,
            text,
            settings=settings,
            now=datetime.now(UTC),
            task_id=case.income_task_id if about_income else None,
            redis=redis,
        )
        await session.commit()
        return conversation.id


async def write(
    settings: Settings, actor: ParticipantActor, conversation_id: uuid.UUID, text: str
) -> None:
    """The participant writes into their conversation, live updates published."""
    engine = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with create_session_factory(engine)() as session:
            conversation = await service.find(session, actor, conversation_id, lock=True)
            assert conversation is not None
            await service.post(
                session,
                actor,
                conversation,
                text,
                settings=settings,
                now=datetime.now(UTC),
                redis=redis,
            )
            await session.commit()
        # The live update goes out after the commit, as a task of this loop: let it finish.
        await asyncio.gather(*(asyncio.all_tasks() - {asyncio.current_task()}))
    finally:
        await redis.aclose()
        await engine.dispose()


def write_soon(
    settings: Settings, actor: ParticipantActor, conversation_id: uuid.UUID, text: str
) -> threading.Thread:
    """From another thread: the test client holds this loop while it reads a stream."""

    def run() -> None:
        time.sleep(1.0)
        asyncio.run(write(settings, actor, conversation_id, text))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


BADGES = re.compile(r"\((\d+) waiting, (\d+) unread\)")


def badges(html: str) -> tuple[int, int]:
    """The navigation's (waiting, unread) numbers; none shown is (0, 0)."""
    nav = html.split('data-live-region="conversation-badges"', 1)[1].split("</a>", 1)[0]
    found = BADGES.search(nav)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)
