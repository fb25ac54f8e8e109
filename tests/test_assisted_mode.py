"""Assisted mode: a call-centre agent completes a participant's task with them on the phone,
once the participant has read out the code the dashboard sent to their phone.

Against the real engine, workers, PostgreSQL, Redis and Keycloak: the agent signs in through
Keycloak, the code travels through the SMS outbox to the demo provider (read here as the
participant reads their phone), the completion reaches the engine through the completion
outbox, and the participant sees it in their panel.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from html import unescape
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.variants import ASSISTED, STAFF
from panel_core.clock import FakeClock
from panel_core.db.models import (
    AuditEvent,
    FormDefinition,
    PanelTask,
    SmsMessage,
    SubmissionState,
    TaskState,
    TaskSubmission,
)
from panel_core.identity.attempts import AttemptStore
from panel_core.identity.service import participant_identity
from panel_core.settings import Settings
from panel_core.tasks.assisted import why_not
from panel_core.tasks.task_form import TaskForm, form_for
from staff.app import create_app
from tests import credit
from tests.assisted_helpers import Waiting, co_borrower_waiting
from tests.helpers import eventually, sign_in
from tests.sms_inbox import code_in, messages_to, next_message
from tests.staff_helpers import StaffBrowser, csrf_field

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]
AGENT = "celina.konsultant"
ANSWERS = {"relationshipToBorrower": "partner", "maritalStatus": "married", "dependants": "2"}


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Browsers of members of staff, each with its own dashboard and cookies."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_browser(
        clock: FakeClock | None = None, settings: Settings | None = None
    ) -> StaffBrowser:
        chosen = settings or staff_settings
        client = AsyncTestClient(create_app(chosen, clock=clock))
        await client.__aenter__()
        browser = StaffBrowser(client, chosen)
        opened.append((browser, client))
        return browser

    yield open_browser
    for browser, client in opened:
        browser.close()
        await client.__aexit__(None, None, None)


async def send_code(agent: StaffBrowser, waiting: Waiting, element: str) -> str:
    """Send the code from the page and read it off the participant's phone."""
    phone = waiting.co_borrower["phone"]
    seen = len(await messages_to(agent.settings.redis_url, phone))
    start = waiting.assisted(element)
    sent = await agent.post_form(f"{start}/code", {}, start)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"{start}?code=sent#code"
    text = await next_message(agent.settings.redis_url, phone, seen)
    assert waiting.case_number in text
    return code_in(text)


async def read_out(agent: StaffBrowser, waiting: Waiting, element: str, code: str) -> Any:
    start = waiting.assisted(element)
    return await agent.post_form(f"{start}/presence", {"code": code}, start)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def error_text(html: str) -> str:
    found = re.search(r'<p id="code-error" class="error-message">(.*?)</p>', html, re.S)
    assert found, "the code field says what is wrong"
    spoken = re.sub(r'<span class="visually-hidden">.*?</span>', "", found.group(1))
    return unescape(re.sub(r"<[^>]+>", "", spoken)).strip()


async def events(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID, event: str
) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.case_id == case_id, AuditEvent.event == event)
                .order_by(AuditEvent.id)
            )
        )


async def test_an_agent_completes_a_co_borrowers_questionnaire_with_the_code_read_out(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], people: Opener
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    agent = await people()
    await agent.sign_in(AGENT)
    questionnaire = waiting.tasks[credit.ELEMENT_TASK_QUESTIONNAIRE]
    start = waiting.assisted(credit.ELEMENT_TASK_QUESTIONNAIRE)

    case_page = await agent.page(waiting.page)
    assert f'href="{start}"' in case_page.text
    # The consent task is listed, with why it cannot be done on the phone, and no link.
    assert f'href="{waiting.assisted(credit.ELEMENT_TASK_CONSENTS)}"' not in case_page.text

    # Before any code: the form is not open to the agent.
    closed = await agent.client.get(f"{start}/form", follow_redirects=False)
    assert closed.status_code == 303 and closed.headers["location"] == f"{start}?problem=expired"

    code = await send_code(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE)
    wrong = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, other_than(code))
    assert wrong.status_code == 400
    assert error_text(wrong.text) in (
        "The code is wrong or has expired. Check it with the participant, or send a new code.",
        "Kod jest błędny lub wygasł. Sprawdź go z uczestnikiem albo wyślij nowy kod.",
    )
    confirmed = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == f"{start}/form"
    right = await agent.page(f"{start}/form")
    assert right.status_code == 200
    # The variant for call-centre agents: the shorter questionnaire, worded for the call.
    assert "Zadaj klientowi" in right.text or "Ask the customer" in right.text
    assert 'name="hasOtherLoans"' not in right.text
    assert 'name="maritalStatus"' in right.text
    # The code was used: read out again, it opens nothing more.
    again = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert again.status_code == 400
    assert error_text(again.text) in (
        "This code has already been used. Send a new code.",
        "Ten kod został już użyty. Wyślij nowy kod.",
    )

    # Sent with an answer missing: the errors, and what was typed stays.
    form = f"{start}/form"
    missing = await agent.post_form(form, {"maritalStatus": "married"}, form)
    assert missing.status_code == 400
    assert 'class="error-summary"' in missing.text and 'href="#field-dependants"' in missing.text
    assert 'value="married" checked' in missing.text

    done = await agent.post_form(form, ANSWERS, form)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{waiting.page}?assisted=completed#assisted"

    async def completed_in_engine() -> PanelTask | None:
        async with sessions() as session:
            task = await session.get(PanelTask, questionnaire)
            return task if task is not None and task.state == TaskState.COMPLETED else None

    # COMPLETED is the engine's own record of the task, mirrored back by the workers.
    await eventually(completed_in_engine, within=60)
    async with sessions() as session:
        submission = await session.scalar(
            select(TaskSubmission).where(TaskSubmission.panel_task_id == questionnaire)
        )
        variant = await session.scalar(
            select(FormDefinition.form_key)
            .where(FormDefinition.form_id == credit.FORM_QUESTIONNAIRE_PHONE)
            .order_by(FormDefinition.version.desc())
            .limit(1)
        )
    assert submission is not None
    assert submission.state == SubmissionState.DELIVERED
    assert submission.assisted_by == f"staff:{AGENT}"
    assert submission.submitted_by == waiting.co_borrower_id
    assert submission.form_key == variant
    assert submission.answers == {
        "relationshipToBorrower": "partner",
        "maritalStatus": "married",
        "dependants": 2,
    }

    completion = (await events(sessions, waiting.case_id, audit.TASK_COMPLETED))[-1]
    assert completion.actor_kind == "staff" and completion.staff_name == "Celina Wiśniewska"
    assert str(completion.participant_id) == waiting.co_borrower_id
    assert completion.details["assisted"] is True
    for event in (
        audit.ASSISTED_CODE_SENT,
        audit.ASSISTED_CODE_REFUSED,
        audit.ASSISTED_PRESENCE_CONFIRMED,
        audit.ASSISTED_FORM_OPENED,
    ):
        recorded = await events(sessions, waiting.case_id, event)
        assert recorded and recorded[0].staff_name == "Celina Wiśniewska", event
    assert len(await events(sessions, waiting.case_id, audit.ASSISTED_CODE_REFUSED)) == 2

    # The staff's case page says who helped; the task has left the open ones.
    shown = await agent.page(f"{waiting.page}?assisted=completed")
    assert "Celina Wiśniewska (celina.konsultant)" in shown.text
    assert f'href="{start}"' not in shown.text

    # The participant sees it in their panel, without the agent's name.
    async with AsyncTestClient(panel_app(settings)) as panel:
        await sign_in(panel, waiting.co_borrower_id)
        overview = await panel.get("/case/", headers={"accept": "text/html"})
    assert overview.status_code == 200
    assert "with the help of the bank" in overview.text or "z pomocą banku" in overview.text, (
        overview.text
    )
    assert "Celina" not in overview.text


async def test_an_expired_code_and_an_expired_check_are_refused_and_typing_is_kept(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], people: Opener
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    clock = FakeClock()
    agent = await people(clock)
    await agent.sign_in(AGENT)
    start = waiting.assisted(credit.ELEMENT_TASK_QUESTIONNAIRE)

    code = await send_code(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE)
    clock.advance(settings.otp_ttl_seconds + 1)
    expired = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert expired.status_code == 400
    assert "expired" in error_text(expired.text) or "wygasł" in error_text(expired.text)

    code = await send_code(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE)
    opened = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert opened.headers["location"] == f"{start}/form"
    clock.advance(settings.assisted_session_seconds + 1)
    form = f"{start}/form"
    token = await agent.page(start)
    late = await agent.client.post(
        form, data={**ANSWERS, "_csrf_token": csrf_field(token.text)}, follow_redirects=False
    )
    assert late.status_code == 303 and late.headers["location"] == f"{start}?problem=expired"
    told = await agent.page(late.headers["location"])
    assert "expired" in told.text or "wygasł" in told.text
    async with sessions() as session:
        task = await session.get(PanelTask, waiting.tasks[credit.ELEMENT_TASK_QUESTIONNAIRE])
        assert task is not None and task.state == TaskState.OPEN

    # After a new check the form opens again with what was typed.
    code = await send_code(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE)
    confirmed = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert confirmed.headers["location"] == f"{start}/form"
    reopened = await agent.page(f"{start}/form")
    assert 'value="married" checked' in reopened.text
    assert 'value="partner" checked' in reopened.text


async def test_wrong_codes_lock_the_participant_and_no_code_is_sent_then(
    settings: Settings,
    staff_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    people: Opener,
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    strict = msgspec.structs.replace(staff_settings, login_max_failures=3)
    agent = await people(settings=strict)
    await agent.sign_in(AGENT)
    code = await send_code(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE)
    answers = []
    for _ in range(3):
        refused = await read_out(
            agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, other_than(code)
        )
        assert refused.status_code == 400
        answers.append(error_text(refused.text))
    assert answers[-1] in (
        "Too many wrong codes. The participant's access is locked for 30 minutes.",
        "Zbyt wiele błędnych kodów. Dostęp uczestnika jest zablokowany na 30 minut.",
    ), answers
    # Locked: the right code opens nothing, and no new code goes out.
    late = await read_out(agent, waiting, credit.ELEMENT_TASK_QUESTIONNAIRE, code)
    assert late.status_code == 400
    assert "locked" in error_text(late.text) or "zablokowany" in error_text(late.text)
    start = waiting.assisted(credit.ELEMENT_TASK_QUESTIONNAIRE)
    phone = waiting.co_borrower["phone"]
    seen = len(await messages_to(settings.redis_url, phone))
    blocked = await agent.post_form(f"{start}/code", {}, start)
    assert blocked.headers["location"] == f"{start}?code=locked#code"
    page = await agent.page(blocked.headers["location"])
    assert "locked" in page.text or "zablokowany" in page.text
    # The lock is the participant's own, the one their sign-in and signing codes share.
    redis = Redis.from_url(settings.redis_url)
    try:
        lock = await AttemptStore(redis).lock_state(
            participant_identity(settings.hash_key, waiting.co_borrower_id), now=time.time()
        )
    finally:
        await redis.aclose()
    assert lock.locked
    async with sessions() as session:
        queued = (
            await session.scalars(
                select(SmsMessage.id).where(
                    SmsMessage.participant_id == uuid.UUID(waiting.co_borrower_id),
                    SmsMessage.purpose == c.SMS_ASSISTED_CODE,
                )
            )
        ).all()
    assert len(queued) == 1, "only the first code was queued"
    assert len(await messages_to(settings.redis_url, phone)) == seen


async def test_a_consent_task_cannot_be_completed_on_the_phone_by_default(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], people: Opener
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    agent = await people()
    await agent.sign_in(AGENT)
    start = waiting.assisted(credit.ELEMENT_TASK_CONSENTS)
    reason = (
        "This task asks for consents, which the participant gives only themselves, in the "
        "panel: this case type does not let the bank take them on the phone."
    )
    polish_start = "To zadanie wymaga zgód"

    case_page = await agent.page(waiting.page)
    assert reason in case_page.text or polish_start in case_page.text
    page = await agent.page(start)
    assert page.status_code == 200
    assert reason in page.text or polish_start in page.text
    assert f'action="{start}/code"' not in page.text and 'name="code"' not in page.text

    refused = await agent.post_form(f"{start}/code", {}, waiting.page)
    assert refused.status_code == 409
    presence = await agent.post_form(f"{start}/presence", {"code": "123456"}, waiting.page)
    assert presence.status_code == 409
    sent = await agent.post_form(
        f"{start}/form",
        {"consentCreditCheck": "true", "consentDataProcessing": "true"},
        waiting.page,
    )
    assert sent.status_code == 409
    async with sessions() as session:
        task = await session.get(PanelTask, waiting.tasks[credit.ELEMENT_TASK_CONSENTS])
        assert task is not None and task.state == TaskState.OPEN
        queued = await session.scalar(
            select(SmsMessage.id).where(
                SmsMessage.case_id == waiting.case_id, SmsMessage.purpose == c.SMS_ASSISTED_CODE
            )
        )
    assert queued is None, "no code is sent for a task that cannot be done on the phone"

    # A case type that allows it explicitly lets the same form through.
    descriptor = case_types.parse((credit.FOLDER / "credit-application.case.json").read_bytes())
    consents = msgspec.json.decode(
        (credit.FOLDER / "forms" / f"{credit.FORM_CONSENTS}.form").read_bytes()
    )
    own = TaskForm(consents, credit.FORM_CONSENTS, None)
    assert why_not(own, descriptor)
    allowing = msgspec.structs.replace(
        descriptor, assisted=msgspec.structs.replace(descriptor.assisted, consents=True)
    )
    assert why_not(own, allowing) == ""


async def test_an_analyst_may_not_use_assisted_mode(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], people: Opener
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    analyst = await people()
    await analyst.sign_in("anna.analityk")
    start = waiting.assisted(credit.ELEMENT_TASK_QUESTIONNAIRE)
    case_page = await analyst.page(waiting.page)
    assert case_page.status_code == 200 and f'href="{start}"' not in case_page.text
    assert (await analyst.page(start)).status_code == 403
    assert (await analyst.page(f"{start}/form")).status_code == 403
    for step, data in (("code", {}), ("presence", {"code": "123456"}), ("form", ANSWERS)):
        refused = await analyst.post_form(f"{start}/{step}", data, waiting.page)
        assert refused.status_code == 403, step
    async with sessions() as session:
        queued = await session.scalar(
            select(SmsMessage.id).where(
                SmsMessage.case_id == waiting.case_id, SmsMessage.purpose == c.SMS_ASSISTED_CODE
            )
        )
    assert queued is None

    # An agent may, but only for a participant's task of that very case.
    agent = await people()
    await agent.sign_in(AGENT)
    assert (await agent.page(start)).status_code == 200
    other = await co_borrower_waiting(settings, sessions)
    theirs = other.tasks[credit.ELEMENT_TASK_QUESTIONNAIRE]
    assert (await agent.page(f"{waiting.page}/tasks/{theirs}/assisted")).status_code == 404
    assert (await agent.page(f"{waiting.page}/tasks/{uuid.uuid4()}/assisted")).status_code == 404


async def test_a_variant_is_used_only_in_a_version_that_completes_the_step_alike(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    waiting = await co_borrower_waiting(settings, sessions)
    agents, managers = frozenset({"call-centre-agents"}), frozenset({"team-managers"})
    async with sessions() as session:
        task = await session.get(PanelTask, waiting.tasks[credit.ELEMENT_TASK_QUESTIONNAIRE])
        assert task is not None
        descriptor = await case_types.of_case_id(session, waiting.case_id)
        phone = await form_for(session, task, descriptor, mode=ASSISTED, groups=agents)
        assert phone.variant and phone.form_id == credit.FORM_QUESTIONNAIRE_PHONE
        own = await form_for(session, task, descriptor, mode=ASSISTED, groups=managers)
        assert not own.variant and own.form_key == task.form_key
        assert not (await form_for(session, task, descriptor, mode=STAFF, groups=agents)).variant

        # A newer version of the variant that would send the process something the task's
        # own form does not (deployed around the checks) is passed over for the one that
        # completes the step alike.
        changed = json.loads(json.dumps(phone.schema))
        for component in changed["components"]:
            if component.get("key") == "dependants":
                component.setdefault("properties", {})["sendToProcess"] = "true"
        newer = FormDefinition(
            form_key=9_000_000_000_000_000 + secrets.randbelow(10**9),
            form_id=credit.FORM_QUESTIONNAIRE_PHONE,
            version=10_000,
            schema=changed,
            problems=[],
        )
        session.add(newer)
        await session.commit()
        try:
            chosen = await form_for(session, task, descriptor, mode=ASSISTED, groups=agents)
            assert chosen.variant and chosen.form_key == phone.form_key
        finally:
            await session.delete(newer)
            await session.commit()
