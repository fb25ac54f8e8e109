"""The credit bureau step in the real engine and the dashboard's failed steps, signed in
through the real Keycloak: a bureau that fails becomes an incident operators see in the list
and on the case page; once the bureau works again a retry from the page lets the process go on
to the analyst. A retry says which of its steps failed; only operators and team managers may
retry; an applicant the bureau does not know reaches the analyst with the flag; a bureau that
recovers within the job's retries raises no incident; the jobs' retries the list shows follow
the engine's records."""

from __future__ import annotations

import itertools
import json
import re
import secrets
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

from devtools.bureau_stub import score_of
from devtools.ports import free_port
from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.db.models import (
    AuditEvent,
    Case,
    EngineIncident,
    EngineJob,
    EngineVariable,
    IncidentState,
    Participant,
)
from panel_core.engine.incidents import group_key
from panel_core.engine.jobs import read_job, record_job, retries_left
from panel_core.engine.records import UnreadableRecordError
from panel_core.settings import Settings
from staff.app import create_app
from tests.bureau_helpers import (
    CaseAtBureau,
    analyst_task,
    case_at_the_bureau,
    incident_state,
    open_incident,
)
from tests.conftest import Stack
from tests.helpers import eventually
from tests.staff_helpers import StaffBrowser

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]
HTTP_500 = "The credit bureau answered HTTP 500."


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Browsers of members of staff, each with its own dashboard and cookies."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_browser(settings: Settings | None = None) -> StaffBrowser:
        client = AsyncTestClient(create_app(settings or staff_settings))
        await client.__aenter__()
        person = StaffBrowser(client, staff_settings)
        opened.append((person, client))
        return person

    yield open_browser
    for person, client in opened:
        person.close()
        await client.__aexit__(None, None, None)


async def signed_in(people: Opener, username: str, settings: Settings | None = None) -> Any:
    person = await people(settings)
    await person.sign_in(username)
    # The texts below are read in English; Polish is the default.
    await person.client.get("/language/en?next=/")
    return person


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stuck(
    stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[CaseAtBureau, EngineIncident]]:
    """A case whose bureau keeps answering 500: an open incident nobody retries here."""
    case = await case_at_the_bureau(settings, stack.bureau, "500")
    incident = await open_incident(sessions, case.case_id)
    yield case, incident
    stack.bureau.set_mode(None, reference=str(case.case_id))


def row_of(html: str, incident_key: int) -> str:
    match = re.search(rf'<tr data-incident="{incident_key}">(.*?)</tr>', html, re.DOTALL)
    assert match, f"incident {incident_key} is not listed"
    return match.group(1)


def cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)
    ]


def steps(html: str) -> dict[str, str]:
    """Each retry step shown, with its outcome."""
    return dict(re.findall(r'data-step="([a-z-]+)" data-outcome="([a-z-]+)"', html))


async def retried_events(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event == audit.INCIDENT_RETRIED, AuditEvent.case_id == case_id)
                .order_by(AuditEvent.id)
            )
        )


async def test_a_failing_bureau_is_an_incident_an_operator_retries_until_the_analyst_has_it(
    people: Opener, stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bureau = stack.bureau
    case = await case_at_the_bureau(settings, bureau, "500")
    reference = str(case.case_id)
    try:
        incident = await open_incident(sessions, case.case_id)
        assert incident.error_type == "JOB_NO_RETRIES"
        assert incident.error_message == HTTP_500
        # The model's retries="3": three calls, each after the job's retry backoff.
        calls = bureau.requests(reference)
        assert [call["mode"] for call in calls] == ["500", "500", "500"]
        gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(calls)]
        assert all(gap >= 0.8 * settings.bureau_retry_backoff_seconds for gap in gaps), gaps
        # What reached the bureau: the case id and the participant's blind index.
        assert calls[0]["subjects"] == 1
        async with sessions() as session:
            index = await session.scalar(
                select(Participant.pesel_index).where(Participant.case_id == case.case_id)
            )
            job = await session.get(EngineJob, incident.job_key)
        assert index is not None and job is not None and job.retries == 0

        olek = await signed_in(people, "olek.operator")
        listed = await olek.page("/incidents/")
        assert listed.status_code == 200
        row = cells(row_of(listed.text, incident.incident_key))
        assert row[0] == case.case_number
        assert row[1] == "Credit application"
        assert row[2] == "Check the credit bureau"
        assert row[4] == "0", row
        # Grouped by what went wrong: the type, then the engine's message.
        group = group_key(incident.error_type, incident.error_message)
        assert f'id="group-{group}-heading"' in listed.text
        assert "A service task ran out of retries" in listed.text and HTTP_500 in listed.text
        assert 'href="/incidents/"' in listed.text and 'aria-current="page"' in listed.text

        case_path = f"/cases/{case.case_id}"
        case_page = await olek.page(case_path)
        assert f'data-incident="{incident.incident_key}"' in case_page.text
        assert f'action="/incidents/{incident.incident_key}/retry"' in case_page.text

        # The bureau is repaired; the operator retries from the case page.
        bureau.set_mode("ok", reference=reference)
        retried = await olek.post_form(
            f"/incidents/{incident.incident_key}/retry",
            {"reason": "Biuro kredytowe znów działa.", "retries": "1", "return_to": case_path},
            page=case_path,
        )
        assert retried.status_code == 303, retried.text
        assert retried.headers["location"] == f"{case_path}?notice=incident-retried#incidents"
        after = await olek.page(f"{case_path}?notice=incident-retried")
        assert "The step was retried." in after.text

        # The engine ran the step again and the process went on to the analyst.
        await analyst_task(sessions, case.case_id)
        assert await incident_state(sessions, incident.incident_key) == IncidentState.RESOLVED
        async with sessions() as session:
            variable = await session.scalar(
                select(EngineVariable).where(EngineVariable.name == c.VAR_BUREAU_RESULT)
                .join(Case, Case.process_instance_key == EngineVariable.process_instance_key)
                .where(Case.id == case.case_id)
            )  # fmt: skip
        assert variable is not None
        assert variable.value == {"found": True, "score": score_of(index), "subjects": 1}
        assert [call["mode"] for call in bureau.requests(reference)][-1] == "ok"

        (event,) = await retried_events(sessions, case.case_id)
        assert event.staff_name == "Olek Lewandowski"
        assert event.details["username"] == "olek.operator"
        assert event.details["reason"] == "Biuro kredytowe znów działa."
        assert event.details["succeeded"] is True
        assert event.details["steps"] == {
            "variables": "not-needed",
            "retries": "done",
            "resolve": "done",
        }
        assert event.details["retries"] == 1

        listed = await olek.page("/incidents/")
        assert f'data-incident="{incident.incident_key}"' not in listed.text
        # The same retry sent again: the step is no longer open, and nothing is sent.
        again = await olek.post_form(
            f"/incidents/{incident.incident_key}/retry",
            {"reason": "Jeszcze raz.", "retries": "1"},
            page="/incidents/",
        )
        assert again.status_code == 400
        assert "no longer open" in again.text
        assert len(await retried_events(sessions, case.case_id)) == 1
    finally:
        bureau.set_mode(None, reference=reference)


async def test_only_operators_and_team_managers_see_and_retry_failed_steps(
    people: Opener,
    stuck: tuple[CaseAtBureau, EngineIncident],
    staff_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case, incident = stuck
    retry = f"/incidents/{incident.incident_key}/retry"
    for username in ("celina.konsultant", "anna.analityk"):
        person = await signed_in(people, username)
        for path in ("/incidents/", f"/incidents/{incident.incident_key}"):
            page = await person.page(path)
            assert page.status_code == 403, (username, path)
            assert "Only operators and team managers" in page.text
        home = await person.page("/")
        assert 'href="/incidents/"' not in home.text
        refused = await person.post_form(retry, {"reason": "Spróbuję.", "retries": "1"}, page="/")
        assert refused.status_code == 403, (username, refused.text[:200])
        bulk = await person.post_form(
            "/incidents/retry",
            {
                "reason": "Spróbuję.",
                "retries": "1",
                "group": group_key(incident.error_type, incident.error_message),
                "incident": str(incident.incident_key),
            },
            page="/",
        )
        assert bulk.status_code == 403
        # The case page still shows the failed step, without a way to retry it.
        case_page = await person.page(f"/cases/{case.case_id}")
        assert f'data-incident="{incident.incident_key}"' in case_page.text
        assert f'action="{retry}"' not in case_page.text
    assert await incident_state(sessions, incident.incident_key) == IncidentState.ACTIVE
    assert await retried_events(sessions, case.case_id) == []

    # A team manager may, and sees it where Operate is configured, linked there.
    operated = msgspec.structs.replace(staff_settings, operate_url="https://operate.bank.example/")
    magda = await signed_in(people, "magda.kierownik", operated)
    listed = await magda.page("/incidents/")
    assert listed.status_code == 200
    link = f"https://operate.bank.example/processes/{incident.process_instance_key}"
    assert link in row_of(listed.text, incident.incident_key)
    detail = await magda.page(f"/incidents/{incident.incident_key}")
    assert link in detail.text
    plain = await signed_in(people, "olek.operator")
    assert "operate.bank.example" not in (await plain.page("/incidents/")).text


async def test_a_retry_whose_step_fails_says_which_one_and_sends_nothing_after_it(
    people: Opener,
    stuck: tuple[CaseAtBureau, EngineIncident],
    staff_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case, incident = stuck
    page = f"/incidents/{incident.incident_key}"
    retry = f"{page}/retry"
    olek = await signed_in(people, "olek.operator")
    shown = await olek.page(page)
    assert shown.status_code == 200
    assert "Check the credit bureau" in shown.text and HTTP_500 in shown.text

    # No reason: nothing is tried, the form says what is missing.
    missing = await olek.post_form(retry, {"reason": " ", "retries": "1"}, page=page)
    assert missing.status_code == 400
    assert "Say why you retry" in missing.text and 'aria-invalid="true"' in missing.text
    assert steps(missing.text) == {}

    # Variables that are no JSON object: the first step fails, the others are not sent.
    broken = await olek.post_form(
        retry,
        {"reason": "Poprawiam zmienne.", "retries": "2", "variables": '{"bureauResult": '},
        page=page,
    )
    assert broken.status_code == 400
    assert steps(broken.text) == {
        "variables": "failed",
        "retries": "not-tried",
        "resolve": "not-tried",
    }
    assert "The retry stopped at the step “Fix the variables”" in broken.text
    assert "Enter the variables as a JSON object" in broken.text
    # What was typed is kept for the correction.
    assert "Poprawiam zmienne." in broken.text and "{&#34;bureauResult&#34;: " in broken.text

    # The engine cannot be reached: the step that needed it fails, and says so.
    cut_off = msgspec.structs.replace(
        staff_settings, camunda_rest_url=f"http://127.0.0.1:{free_port()}"
    )
    offline = await signed_in(people, "olek.operator", cut_off)
    unreachable = await offline.post_form(
        retry,
        {"reason": "Ustawiam wynik ręcznie.", "retries": "1", "variables": '{"note": 1}'},
        page=page,
    )
    assert unreachable.status_code == 502
    assert steps(unreachable.text) == {
        "variables": "failed",
        "retries": "not-tried",
        "resolve": "not-tried",
    }
    assert "The engine could not be reached or is busy." in unreachable.text
    without_variables = await offline.post_form(
        retry, {"reason": "Ponawiam.", "retries": "1"}, page=page
    )
    assert steps(without_variables.text) == {
        "variables": "not-needed",
        "retries": "failed",
        "resolve": "not-tried",
    }

    # Each attempt is in the audit log, with its reason and where it stopped.
    events = await retried_events(sessions, case.case_id)
    assert [e.details["reason"] for e in events] == [
        "Poprawiam zmienne.",
        "Ustawiam wynik ręcznie.",
        "Ponawiam.",
    ]
    assert [e.details["succeeded"] for e in events] == [False, False, False]
    assert events[0].details["steps"]["variables"] == "failed: invalid"
    assert events[1].details["variables"] == ["note"]
    assert events[2].details["steps"]["retries"] == "failed: unavailable"
    # Nothing reached the engine: the incident is as it was.
    assert await incident_state(sessions, incident.incident_key) == IncidentState.ACTIVE


async def test_an_operator_retries_a_whole_group_at_once(
    people: Opener, stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bureau = stack.bureau
    cases = [await case_at_the_bureau(settings, bureau, "malformed") for _ in range(2)]
    try:
        incidents = [await open_incident(sessions, case.case_id) for case in cases]
        group = group_key(incidents[0].error_type, incidents[0].error_message)
        assert {group_key(i.error_type, i.error_message) for i in incidents} == {group}

        olek = await signed_in(people, "olek.operator")
        listed = await olek.page("/incidents/")
        section = listed.text.split(f'id="group-{group}-heading"', 1)[1].split("</section>", 1)[0]
        shown = [int(k) for k in re.findall(r'name="incident" value="(\d+)"', section)]
        assert {i.incident_key for i in incidents} <= set(shown)
        for case in cases:
            assert case.case_number in section

        # The reason is required for a group too: nothing is retried without one.
        form = {"group": group, "incident": [str(k) for k in shown], "retries": "2"}
        refused = await olek.post_form(
            "/incidents/retry", {**form, "reason": ""}, page="/incidents/"
        )
        assert refused.status_code == 400 and "Say why you retry" in refused.text
        for incident in incidents:
            assert await incident_state(sessions, incident.incident_key) == IncidentState.ACTIVE

        for case in cases:
            bureau.set_mode("ok", reference=str(case.case_id))
        done = await olek.post_form(
            "/incidents/retry",
            {**form, "reason": "Biuro naprawiło odpowiedzi."},
            page="/incidents/",
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/incidents/?notice=retried&count={len(shown)}"
        for case in cases:
            await analyst_task(sessions, case.case_id)
        batches = set()
        for case in cases:
            (event,) = await retried_events(sessions, case.case_id)
            assert event.details["reason"] == "Biuro naprawiło odpowiedzi."
            assert event.details["retries"] == 2 and event.details["succeeded"] is True
            batches.add(event.details["batch"])
        assert len(batches) == 1
    finally:
        for case in cases:
            bureau.set_mode(None, reference=str(case.case_id))


async def test_an_applicant_the_bureau_does_not_know_reaches_the_analyst_with_the_flag(
    people: Opener, stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await case_at_the_bureau(settings, stack.bureau, "not-found")
    try:
        task = await analyst_task(sessions, case.case_id)
        async with sessions() as session:
            kept = await session.get(Case, case.case_id)
            assert kept is not None and kept.process_instance_key is not None
            incidents = list(
                await session.scalars(
                    select(EngineIncident).where(
                        EngineIncident.root_process_instance_key == kept.process_instance_key
                    )
                )
            )
        # A business outcome, no failure: one call, no retries, no incident.
        assert incidents == []
        assert [r["mode"] for r in stack.bureau.requests(str(case.case_id))] == ["not-found"]
        # The analyst takes the review and reads the flag above the decision.
        anna = await signed_in(people, "anna.analityk")
        task_path = f"/tasks/{task.id}"
        claimed = await anna.post_form(f"{task_path}/claim", {}, page=task_path)
        assert claimed.status_code == 303, claimed.text
        page = await anna.page(task_path)
        assert page.status_code == 200
        assert (
            "The credit bureau does not know at least one person on the application." in page.text
        )
    finally:
        stack.bureau.set_mode(None, reference=str(case.case_id))


async def test_a_bureau_that_recovers_within_the_retries_raises_no_incident(
    stack: Stack, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The first call gets no answer; the engine offers the job again after its backoff, and
    the second call, to a bureau that works again, lets the case go on."""
    bureau = stack.bureau
    case = await case_at_the_bureau(settings, bureau, "timeout")
    reference = str(case.case_id)
    try:

        async def first_call() -> list[dict[str, Any]]:
            return bureau.requests(reference)

        await eventually(first_call, within=90)
        bureau.set_mode("ok", reference=reference)
        await analyst_task(sessions, case.case_id)
        assert [call["mode"] for call in bureau.requests(reference)] == ["timeout", "ok"]
        async with sessions() as session:
            kept = await session.get(Case, case.case_id)
            assert kept is not None and kept.process_instance_key is not None
            incidents = list(
                await session.scalars(
                    select(EngineIncident).where(
                        EngineIncident.root_process_instance_key == kept.process_instance_key
                    )
                )
            )
        assert incidents == []

        # The job's retries were kept while it was failing, and forgotten once it completed.
        async def forgotten() -> bool:
            async with sessions() as session:
                left = await session.scalar(
                    select(EngineJob).where(
                        EngineJob.process_instance_key == kept.process_instance_key
                    )
                )
            return left is None

        assert await eventually(forgotten, within=30)
    finally:
        bureau.set_mode(None, reference=reference)


async def test_a_jobs_retries_follow_its_newest_record_and_are_forgotten_when_it_ends(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = 2**52 + secrets.randbelow(2**40)

    def record(intent: str, retries: int, position: int) -> bytes:
        value = {"retries": retries, "processInstanceKey": 7, "elementInstanceKey": 8, "type": "t"}
        return json.dumps(
            {"intent": intent, "recordType": "EVENT", "key": key, "position": position,
             "value": value, "variables": {"not": "read"}}
        ).encode()  # fmt: skip

    assert read_job(record("CREATED", 3, 1)) is None
    with pytest.raises(UnreadableRecordError):
        read_job(b'{"intent": "FAILED", "recordType": "EVENT", "key": 1, "value": {}}')
    # Applied out of order: the retries an operator gave (newer) win over the failure before.
    for payload in (record("RETRIES_UPDATED", 3, 20), record("FAILED", 0, 10)):
        event = read_job(payload)
        assert event is not None
        async with sessions() as session:
            await record_job(session, event)
            await session.commit()
    async with sessions() as session:
        assert await retries_left(session, [key]) == {key: 3}
    completed = read_job(record("COMPLETED", 3, 30))
    assert completed is not None
    async with sessions() as session:
        await record_job(session, completed)
        await session.commit()
        assert await retries_left(session, [key]) == {}
