"""The end of a case: access after closure per outcome, then the retention purge.

Against the session's real PostgreSQL and Redis; time is a fake clock, so a window of
months passes in a test. The cases are registered directly, with no process behind them:
only the tests close them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.audit import log as audit
from panel_core.cases import closure
from panel_core.cases.case_types import AfterClosure
from panel_core.cases.numbers import generate_case_number
from panel_core.cases.retention import RetentionJob
from panel_core.cases.service import set_case_status
from panel_core.clock import FakeClock
from panel_core.db.models import (
    AuditEvent,
    Case,
    Document,
    DocumentState,
    EngineVariable,
    PanelTask,
    Participant,
    SignatureRecord,
    SmsMessage,
    StaffNote,
    SubmissionState,
    TaskDraft,
    TaskState,
    TaskSubmission,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.mirror import apply_process_instance
from panel_core.engine.records import ProcessInstanceEvent, ProcessInstanceValue
from panel_core.identity.actors import Client
from panel_core.identity.pesel import fragment_hash, make_pesel, pesel_index
from panel_core.identity.service import LoginService, Outcome
from panel_web.locale import LANGUAGE_COOKIE
from tests import credit
from tests.conftest import Stack
from tests.helpers import sign_in

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

DAY = 86400.0
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _phone() -> str:
    return f"+4853{secrets.randbelow(10**7):07d}"


class Registered(msgspec.Struct):
    case_id: uuid.UUID
    case_number: str
    participant_id: uuid.UUID
    pesel: str
    phone: str
    document_id: uuid.UUID
    storage_key: str
    task_id: uuid.UUID
    customer_index: str


async def registered_case(
    settings: Any, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> Registered:
    """A credit case with one applicant who has answered, drafted, uploaded and signed."""
    pesel = make_pesel(date(1980, 5, 17), 1000 + secrets.randbelow(8000))
    phone = _phone()
    case_id, participant_id, task_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    instance = secrets.randbelow(10**12) + 10**12
    key = storage.new_key()

    async def chunks() -> AsyncIterator[bytes]:
        yield PDF

    await storage.write(key, chunks())
    async with sessions() as session:
        case = Case(
            id=case_id,
            case_number=generate_case_number("KR"),
            case_type=credit.CASE_TYPE_CREDIT,
            channel="branch",
            status=credit.STATUS_COLLECTING,
            process_id=credit.PROCESS_ID_CREDIT,
            process_instance_key=instance,
        )
        session.add(case)
        await session.flush()
        session.add(
            Participant(
                id=participant_id,
                case_id=case_id,
                role=credit.ROLE_PRIMARY_BORROWER,
                ordinal=0,
                phone_e164=phone,
                pesel_fragment_hash=fragment_hash(
                    settings.hash_key, case_id, pesel[-settings.pesel_fragment_length :]
                ),
                pesel_index=pesel_index(settings.hash_key, pesel),
                locale="en",
            )
        )
        await session.flush()
        session.add(
            PanelTask(
                id=task_id,
                user_task_key=instance + 1,
                process_instance_key=instance,
                element_instance_key=instance + 2,
                bpmn_process_id=credit.PROCESS_ID_CREDIT,
                element_id="credit-income",
                name="Income",
                case_id=case_id,
                participant_id=participant_id,
                state=TaskState.COMPLETED,
            )
        )
        await session.flush()
        session.add(
            TaskSubmission(
                panel_task_id=task_id,
                user_task_key=instance + 1,
                answers={"employer": "Huta Katowice", "income": 8200},
                variables={"employer": "Huta Katowice"},
                submitted_by=str(participant_id),
                state=SubmissionState.DELIVERED,
            )
        )
        session.add(
            TaskDraft(panel_task_id=task_id, participant_id=participant_id, answers={"x": "y"})
        )
        document = Document(
            case_id=case_id,
            participant_id=participant_id,
            panel_task_id=task_id,
            field_key="incomeProof",
            storage_key=key,
            filename="zaswiadczenie.pdf",
            media_type="application/pdf",
            size_bytes=len(PDF),
            sha256=hashlib.sha256(PDF).hexdigest(),
            state=DocumentState.ACCEPTED,
        )
        session.add(document)
        session.add(
            SignatureRecord(
                case_id=case_id,
                participant_id=participant_id,
                panel_task_id=task_id,
                document_name="Application",
                document_sha256=hashlib.sha256(b"signed").hexdigest(),
                content=b"signed",
                media_type="text/plain",
                filename="application.txt",
                verification={"method": "sms-one-time-code"},
            )
        )
        session.add(
            SmsMessage(
                idempotency_key=f"test:{case_id}",
                participant_id=participant_id,
                case_id=case_id,
                purpose="login-code",
                phone_e164=phone,
                locale="en",
                body="Your code 123456",
                state="sent",
            )
        )
        for subject in (
            {"case_id": case_id},
            {"customer_index": pesel_index(settings.hash_key, pesel)},
        ):
            session.add(
                StaffNote(
                    **subject,
                    author_subject="s-1",
                    author_username="anna.analityk",
                    author_name="Anna Analityk",
                    text="Called the applicant; the employer confirmed the income.",
                )
            )
        session.add(
            EngineVariable(
                scope_key=instance,
                name="employer",
                process_instance_key=instance,
                value="Huta Katowice",
                position=1,
            )
        )
        await session.commit()
        document_id = document.id
    return Registered(
        case_id,
        case.case_number,
        participant_id,
        pesel,
        phone,
        document_id,
        key,
        task_id,
        pesel_index(settings.hash_key, pesel),
    )


async def close_case(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID, rule: AfterClosure, at: float
) -> None:
    async with sessions() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        closure.close(case, rule, datetime.fromtimestamp(at, UTC))
        await session.commit()


@pytest.fixture
def storage(stack: Stack) -> LocalDiskStorage:
    return LocalDiskStorage(stack.settings.document_storage_dir)


# Closing.


async def test_a_final_status_closes_the_case_under_its_outcomes_rule_and_a_later_one_reopens(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    registered = await registered_case(stack.settings, sessions, storage)
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    async with sessions() as session:
        assert await set_case_status(
            session, registered.case_id, credit.STATUS_REJECTED, base_url="http://p", at=at
        )
        await session.commit()
        case = await session.get(Case, registered.case_id)
        assert case is not None
        assert case.closed_at == at
        assert case.access_until == at + timedelta(days=30)
        assert case.access_shows == "documents"
        assert case.purge_after == at + timedelta(days=180)
        # The same status again (a job delivered twice) does not move the window.
        assert await set_case_status(
            session,
            registered.case_id,
            credit.STATUS_REJECTED,
            base_url="http://p",
            at=at + timedelta(days=3),
        )
        assert case.access_until == at + timedelta(days=30)
        # A model that takes the case back to work opens it again.
        assert await set_case_status(
            session, registered.case_id, credit.STATUS_IN_REVIEW, base_url="http://p"
        )
        assert (case.closed_at, case.access_until, case.purge_after) == (None, None, None)
        await session.commit()


async def test_a_process_that_ends_without_a_decision_closes_its_case_under_the_case_type_rule(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    registered = await registered_case(stack.settings, sessions, storage)
    async with sessions() as session:
        case = await session.get(Case, registered.case_id)
        assert case is not None and case.process_instance_key is not None
        key = case.process_instance_key
    ended = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def record(intent: str, parent: int = -1, instance: int = key) -> ProcessInstanceEvent:
        return ProcessInstanceEvent(
            intent=intent,
            key=instance,
            value=ProcessInstanceValue(
                bpmn_element_type="PROCESS",
                flow_scope_key=-1,
                process_instance_key=instance,
                bpmn_process_id=credit.PROCESS_ID_CREDIT,
                parent_process_instance_key=parent,
                process_definition_key=1,
                version=1,
            ),
            position=secrets.randbelow(10**9),
            timestamp=ended,
        )

    async with sessions() as session:
        # A called process ending is not the case ending.
        await apply_process_instance(session, record("ELEMENT_COMPLETED", key, key + 50))
        await session.commit()
        case = await session.get(Case, registered.case_id)
        assert case is not None and case.closed_at is None
        await apply_process_instance(session, record("ELEMENT_TERMINATED"))
        await session.commit()
        await session.refresh(case)
        assert case.closed_at == ended
        assert case.access_shows == "everything"
        assert case.access_until == ended + timedelta(days=14)


# Access after closure.


@pytest.fixture
async def panel(stack: Stack) -> AsyncIterator[tuple[AsyncTestClient[Any], FakeClock]]:
    clock = FakeClock()
    async with AsyncTestClient(create_app(stack.settings, clock=clock)) as client:
        client.cookies.set(LANGUAGE_COOKIE, "en")
        yield client, clock


async def test_a_closed_case_shows_what_its_rule_leaves_until_the_window_ends(
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    storage: LocalDiskStorage,
    panel: tuple[AsyncTestClient[Any], FakeClock],
) -> None:
    client, clock = panel
    registered = await registered_case(stack.settings, sessions, storage)
    await sign_in(client, str(registered.participant_id))
    running = await client.get("/case/")
    assert running.status_code == 200 and "Your tasks" in running.text
    assert (await client.get("/tasks/")).status_code == 200

    rule = AfterClosure(access_days=30, shows="documents", purge_after_days=90)
    await close_case(sessions, registered.case_id, rule, clock.now())
    page = await client.get("/case/")
    assert page.status_code == 200
    assert "This case has ended" in page.text and "Your documents" in page.text
    assert "Your tasks" not in page.text and "What has happened" not in page.text
    download = await client.get(f"/documents/{registered.document_id}")
    assert download.status_code == 200 and download.content == PDF
    assert (await client.get("/api/participant/signatures/")).status_code == 200
    # Tasks are not part of what this outcome shows, by page or by API.
    assert (await client.get("/tasks/")).status_code == 404
    assert (await client.get(f"/tasks/{registered.task_id}")).status_code == 404
    assert (await client.get("/api/participant/tasks")).status_code == 404

    # Closed 30 days less a minute ago: the window ends within the session's own timeouts.
    status_only = AfterClosure(access_days=30, shows="status", purge_after_days=90)
    await close_case(sessions, registered.case_id, status_only, clock.now() - 30 * DAY + 60)
    page = await client.get("/case/")
    assert page.status_code == 200 and "Only its status and the decision are shown." in page.text
    assert "Your documents" not in page.text
    assert (await client.get(f"/documents/{registered.document_id}")).status_code == 404

    # The window ends: the session ends with it, and stays ended.
    clock.advance(61)
    ended = await client.get("/case/", headers={"accept": "application/json"})
    assert ended.status_code == 401
    assert "Access to this case has ended." in ended.text
    again = await client.get("/case/", headers={"accept": "application/json"})
    assert again.status_code == 401 and "Sign in" in again.text


async def test_after_the_window_signing_in_answers_as_for_a_case_that_does_not_exist(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    settings = stack.settings
    clock = FakeClock()
    redis = Redis.from_url(settings.redis_url)
    login = LoginService(settings, sessions, redis, clock)
    client = Client(ip=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}", user_agent="t")
    registered = await registered_case(settings, sessions, storage)
    fragment = registered.pesel[-settings.pesel_fragment_length :]

    async def codes_sent() -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(SmsMessage)
                .where(
                    SmsMessage.participant_id == registered.participant_id,
                    SmsMessage.purpose == "login-code",
                )
            )
        return int(count or 0)

    try:
        await close_case(
            sessions,
            registered.case_id,
            AfterClosure(access_days=10, shows="status", purge_after_days=20),
            clock.now(),
        )
        before = await codes_sent()
        within = await login.start(registered.case_number, fragment, client)
        assert within.outcome is Outcome.CODE_SENT
        assert await codes_sent() == before + 1

        clock.advance(10 * DAY)
        after = await login.start(registered.case_number, fragment, client)
        unknown = await login.start(generate_case_number("KR"), fragment, client)
        # The same answer as for a case that never existed, and no code is sent.
        assert after.outcome is unknown.outcome is Outcome.CODE_SENT
        assert await codes_sent() == before + 1
    finally:
        await redis.aclose()


# The retention purge.


async def purged_state(
    sessions: async_sessionmaker[AsyncSession], registered: Registered
) -> dict[str, Any]:
    async with sessions() as session:
        case = await session.get(Case, registered.case_id)
        person = await session.get(Participant, registered.participant_id)
        assert case is not None and person is not None
        submission = await session.scalar(
            select(TaskSubmission).where(TaskSubmission.panel_task_id == registered.task_id)
        )
        assert submission is not None

        async def count(model: Any, *where: Any) -> int:
            return int(
                await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
            )

        sms = await session.scalar(select(SmsMessage).where(SmsMessage.case_id == case.id))
        assert sms is not None
        return {
            "purged": case.purged_at is not None,
            "status": case.status,
            "role": person.role,
            "pesel": (person.pesel_fragment_hash, person.pesel_index),
            "phone": person.phone_e164,
            "answers": submission.answers,
            "drafts": await count(TaskDraft, TaskDraft.panel_task_id == registered.task_id),
            "documents": await count(Document, Document.case_id == case.id),
            "signatures": await count(SignatureRecord, SignatureRecord.case_id == case.id),
            "variables": await count(
                EngineVariable, EngineVariable.process_instance_key == case.process_instance_key
            ),
            "sms": (sms.phone_e164, sms.body),
            "notes": await count(
                StaffNote,
                or_(
                    StaffNote.case_id == case.id,
                    StaffNote.customer_index == registered.customer_index,
                ),
            ),
            "audit": await count(
                AuditEvent, AuditEvent.case_id == case.id, AuditEvent.event == audit.CASE_PURGED
            ),
        }


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_purge_removes_personal_data_on_schedule_and_keeps_the_record_and_audit(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    clock = FakeClock()
    job = RetentionJob(sessions, storage, clock)
    registered = await registered_case(stack.settings, sessions, storage)
    await close_case(
        sessions,
        registered.case_id,
        AfterClosure(access_days=30, shows="everything", purge_after_days=365),
        clock.now(),
    )
    clock.advance(365 * DAY - 60)
    assert registered.case_number not in (await job.run_once()).purged
    kept = await purged_state(sessions, registered)
    assert kept["purged"] is False and kept["documents"] == 1 and kept["phone"]
    assert storage.exists(registered.storage_key)

    purged_before = metric("panel_retention_cases_total", outcome="purged")
    clock.advance(60)
    report = await job.run_once()
    assert registered.case_number in report.purged
    state = await purged_state(sessions, registered)
    assert state == {
        "purged": True,
        # The anonymised record stays: what kind of case, how it ended, who took part.
        "status": credit.STATUS_COLLECTING,
        "role": credit.ROLE_PRIMARY_BORROWER,
        "pesel": (None, None),
        "phone": None,
        "answers": {},
        "drafts": 0,
        "documents": 0,
        "signatures": 0,
        "variables": 0,
        "sms": ("", None),
        # The case's note, and the note on the customer, whose only case this was.
        "notes": 0,
        "audit": 1,
    }
    assert not storage.exists(registered.storage_key)
    assert metric("panel_retention_cases_total", outcome="purged") >= purged_before + 1
    assert metric("panel_retention_rows_purged_total", kind="documents") >= 1

    # Idempotent: the next runs find nothing more to do with it.
    assert registered.case_number not in (await job.run_once()).purged
    assert (await purged_state(sessions, registered))["audit"] == 1


async def test_the_purge_removes_only_the_kinds_its_rule_names(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    clock = FakeClock()
    registered = await registered_case(stack.settings, sessions, storage)
    keep_signed = AfterClosure(
        access_days=0,
        purge_after_days=0,
        purge=("documents", "answers", "drafts", "identity", "phones"),
    )
    await close_case(sessions, registered.case_id, keep_signed, clock.now())
    clock.advance(1)
    assert (
        registered.case_number in (await RetentionJob(sessions, storage, clock).run_once()).purged
    )
    state = await purged_state(sessions, registered)
    assert state["signatures"] == 1 and state["documents"] == 0 and state["phone"] is None


class FailingStorage(LocalDiskStorage):
    """Fails to delete one file, as an object store does in an outage."""

    def __init__(self, root: str, failing_key: str) -> None:
        super().__init__(root)
        self.failing_key = failing_key

    async def delete(self, key: str) -> None:
        if key == self.failing_key:
            raise OSError("object store unavailable")
        await super().delete(key)


async def test_a_purge_that_fails_half_way_leaves_the_case_whole_and_finishes_on_the_next_run(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    clock = FakeClock()
    first = await registered_case(stack.settings, sessions, storage)
    second = await registered_case(stack.settings, sessions, storage)
    # A second file on the first case, so the outage strikes between its two deletions.
    key = storage.new_key()

    async def chunks() -> AsyncIterator[bytes]:
        yield PDF

    await storage.write(key, chunks())
    async with sessions() as session:
        session.add(
            Document(
                case_id=first.case_id,
                participant_id=first.participant_id,
                field_key="extra",
                storage_key=key,
                filename="b.pdf",
                media_type="application/pdf",
                size_bytes=len(PDF),
                sha256=hashlib.sha256(PDF).hexdigest(),
            )
        )
        await session.commit()
    rule = AfterClosure(access_days=0, purge_after_days=1)
    # The first case is due first, so the outage strikes it and the run goes on to the next.
    await close_case(sessions, first.case_id, rule, clock.now() - 10)
    await close_case(sessions, second.case_id, rule, clock.now())
    clock.advance(DAY + 1)
    failing = FailingStorage(stack.settings.document_storage_dir, failing_key=key)
    report = await RetentionJob(sessions, failing, clock).run_once()
    assert first.case_number in report.failed
    assert second.case_number in report.purged
    # Nothing of the failed case's purge is committed: its rows are all there (its first
    # file, deleted before the outage, is gone: the purge was due).
    state = await purged_state(sessions, first)
    assert state["purged"] is False and state["documents"] == 2 and state["phone"]
    assert state["audit"] == 0

    resumed = await RetentionJob(sessions, storage, clock).run_once()
    assert first.case_number in resumed.purged
    state = await purged_state(sessions, first)
    assert state["purged"] is True and state["documents"] == 0 and state["audit"] == 1
    assert not storage.exists(key) and not storage.exists(first.storage_key)


async def test_the_workers_loop_purges_each_interval_until_stopped(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    clock = FakeClock()
    registered = await registered_case(stack.settings, sessions, storage)
    await close_case(
        sessions, registered.case_id, AfterClosure(access_days=0, purge_after_days=1), clock.now()
    )
    stopped = asyncio.Event()
    loop = asyncio.create_task(RetentionJob(sessions, storage, clock).run(stopped, 0.05))
    try:
        await asyncio.sleep(0.2)
        assert (await purged_state(sessions, registered))["purged"] is False
        # The purge date passes while the loop runs: its next round purges the case.
        clock.advance(DAY)

        async def purged() -> bool:
            return bool((await purged_state(sessions, registered))["purged"])

        for _ in range(100):
            if await purged():
                break
            await asyncio.sleep(0.05)
        assert await purged()
    finally:
        stopped.set()
        await asyncio.wait_for(loop, timeout=5)


async def test_two_purges_at_once_purge_each_case_once(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], storage: LocalDiskStorage
) -> None:
    clock = FakeClock()
    cases = [await registered_case(stack.settings, sessions, storage) for _ in range(6)]
    for registered in cases:
        await close_case(
            sessions,
            registered.case_id,
            AfterClosure(access_days=0, purge_after_days=0),
            clock.now(),
        )
    clock.advance(1)
    reports = await asyncio.gather(
        RetentionJob(sessions, storage, clock).run_once(),
        RetentionJob(sessions, storage, clock).run_once(),
    )
    numbers = {registered.case_number for registered in cases}
    purged = [number for report in reports for number in report.purged if number in numbers]
    assert sorted(purged) == sorted(numbers)
    for registered in cases:
        assert (await purged_state(sessions, registered))["audit"] == 1
