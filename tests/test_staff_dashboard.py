"""The staff dashboard against the real Keycloak, engine, PostgreSQL and Redis: signing in
and out, the inbox's candidate groups, claiming (and losing a claim), a manager's
reassignment, completing the analyst's review to a decision, searching cases, reviewing
documents, and the ID token checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app as panel_app
from devtools.keycloak import KeycloakServer
from panel_core.audit import log as audit
from panel_core.clock import FakeClock
from panel_core.db.models import (
    AuditEvent,
    Case,
    Document,
    DocumentState,
    EngineProcessInstance,
    PanelTask,
    ProcessInstanceState,
    SignatureRecord,
    SmsMessage,
    SubmissionState,
    TaskSubmission,
)
from panel_core.identity.pesel import make_pesel
from panel_core.settings import Settings
from staff.app import create_app
from staff.oidc import OidcClient, SignInError
from tests import credit
from tests.helpers import (
    PDF_BYTES,
    csrf_token,
    eventually,
    open_case_via_channel,
    sign_in,
)
from tests.helpers import person as participant
from tests.keycloak_login import (
    authorization_code,
    browser,
    exchange_code,
    follow_to_redirect_uri,
    start_authorization,
    submit_login,
)
from tests.staff_helpers import CaseInReview, StaffBrowser, case_in_review

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Opener = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def people(staff_settings: Settings) -> AsyncIterator[Opener]:
    """Browsers of members of staff, each with its own dashboard process and cookies."""
    opened: list[tuple[StaffBrowser, AsyncTestClient[Litestar]]] = []

    async def open_browser(clock: FakeClock | None = None) -> StaffBrowser:
        client = AsyncTestClient(create_app(staff_settings, clock=clock))
        await client.__aenter__()
        person = StaffBrowser(client, staff_settings)
        opened.append((person, client))
        return person

    yield open_browser
    for person, client in opened:
        person.close()
        await client.__aexit__(None, None, None)


@pytest_asyncio.fixture(loop_scope="session")
async def in_review(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CaseInReview:
    return await case_in_review(settings, sessions)


async def task_row(sessions: async_sessionmaker[AsyncSession], task_id: uuid.UUID) -> PanelTask:
    async with sessions() as session:
        task = await session.get(PanelTask, task_id)
        assert task is not None
        return task


async def staff_events(
    sessions: async_sessionmaker[AsyncSession], event: str, case_id: uuid.UUID | None = None
) -> list[AuditEvent]:
    async with sessions() as session:
        statement = select(AuditEvent).where(AuditEvent.event == event)
        if case_id is not None:
            statement = statement.where(AuditEvent.case_id == case_id)
        return list(await session.scalars(statement.order_by(AuditEvent.id)))


# -- signing in and out ------------------------------------------------------------------


async def test_staff_sign_in_through_keycloak_and_sign_out_of_both(
    people: Opener, sessions: async_sessionmaker[AsyncSession], staff_settings: Settings
) -> None:
    anna = await people()
    before = await anna.client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert before.status_code == 303 and before.headers["location"] == "/login?next=/"
    # Keycloak's own login page, not the dashboard's, takes the password.
    started = await anna.client.get("/login", follow_redirects=False)
    assert started.headers["location"].startswith(staff_settings.staff_oidc_issuer)
    cookie_before = anna.client.cookies.get("staff-session")

    await anna.sign_in("anna.analityk")

    assert anna.client.cookies.get("staff-session") != cookie_before, "rotated at sign-in"
    inbox = await anna.page("/")
    assert inbox.status_code == 200
    assert "Anna Kowalska" in inbox.text
    signed_in = await staff_events(sessions, audit.STAFF_SIGNED_IN)
    assert signed_in[-1].staff_name == "Anna Kowalska"
    assert signed_in[-1].actor_kind == "staff" and signed_in[-1].staff_id
    assert signed_in[-1].details["username"] == "anna.analityk"

    logout = await anna.post_form("/logout", {}, page="/")
    assert logout.status_code == 303
    end_session = logout.headers["location"]
    assert end_session.startswith(staff_settings.staff_oidc_issuer)
    back = anna.provider.get(end_session)
    assert back.is_redirect and back.headers["location"].endswith("/signed-out")

    after = await anna.client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    # Keycloak's session ended too: the next sign-in asks for the password again.
    again = await anna.client.get("/login", follow_redirects=False)
    page = anna.provider.get(again.headers["location"])
    assert page.status_code == 200 and 'name="password"' in page.text
    assert (await staff_events(sessions, audit.STAFF_SIGNED_OUT))[-1].staff_name == "Anna Kowalska"


async def test_a_session_ends_after_the_idle_timeout(
    people: Opener, staff_settings: Settings
) -> None:
    clock = FakeClock()
    bartosz = await people(clock)
    await bartosz.sign_in("bartosz.doradca")
    assert (await bartosz.page("/")).status_code == 200
    clock.advance(staff_settings.staff_session_idle_timeout_seconds - 60)
    assert "Bartosz" in (await bartosz.page("/")).text, "activity keeps the session"
    clock.advance(staff_settings.staff_session_idle_timeout_seconds + 1)
    ended = await bartosz.client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"].startswith("/login")


# -- the inbox and claiming ---------------------------------------------------------------


async def test_an_analyst_claims_and_completes_the_review_to_a_decision(
    people: Opener,
    in_review: CaseInReview,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    anna = await people()
    await anna.sign_in("anna.analityk")
    # Filtered by the case: the suite's other tests leave tasks of their own in these tabs.
    only = f"case_number={in_review.case_number}"
    unassigned = await anna.page(f"/?tab=unassigned&{only}")
    assert in_review.case_number in unassigned.text

    claimed = await anna.post_form(
        f"/tasks/{in_review.analyst_task_id}/claim", {}, page="/?tab=unassigned"
    )
    assert claimed.status_code == 303, claimed.text
    page = await anna.page(claimed.headers["location"])
    assert "The task is yours now." in page.text or "Zadanie jest teraz Twoje." in page.text
    # The case beside the form: the participant, their answers and their document.
    assert "Kredytobiorca" in page.text or "Borrower" in page.text
    assert "income-proof.pdf" in page.text
    mine = await anna.page(f"/?tab=mine&{only}")
    assert in_review.case_number in mine.text

    sent = await anna.post_form(
        f"/tasks/{in_review.analyst_task_id}",
        {"action": "send", "decision": "approved", "decisionReason": "Dochody wystarczające."},
        page=f"/tasks/{in_review.analyst_task_id}",
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/?notice=completed"

    async def ended() -> EngineProcessInstance | None:
        async with sessions() as session:
            row = await session.scalar(
                select(EngineProcessInstance)
                .join(
                    PanelTask,
                    PanelTask.process_instance_key == EngineProcessInstance.process_instance_key,
                )
                .where(PanelTask.id == in_review.analyst_task_id)
            )
            return row if row is not None and row.state is ProcessInstanceState.COMPLETED else None

    await eventually(ended, within=60)
    async with sessions() as session:
        # The engine routed on the decision: its "approved" status step ran, with the reason
        # the analyst wrote (which stayed in the panel).
        case = await session.get(Case, in_review.case_id)
        assert case is not None and case.status == "approved"
        assert case.status_reason == "Dochody wystarczające."
        submission = await session.scalar(
            select(TaskSubmission).where(TaskSubmission.panel_task_id == in_review.analyst_task_id)
        )
        assert submission is not None and submission.state is SubmissionState.DELIVERED
        assert submission.variables == {"decision": "approved"}
        assert submission.submitted_by == "staff:anna.analityk"
        texts = list(
            await session.scalars(
                select(SmsMessage).where(
                    SmsMessage.case_id == in_review.case_id, SmsMessage.purpose == "decision"
                )
            )
        )
    assert [m.phone_e164 for m in texts] == [in_review.participant["phone"]]
    completed = await staff_events(sessions, audit.TASK_COMPLETED, in_review.case_id)
    assert completed[-1].staff_name == "Anna Kowalska"
    claimed_events = await staff_events(sessions, audit.TASK_CLAIMED, in_review.case_id)
    assert [e.staff_name for e in claimed_events] == ["Anna Kowalska"]


async def test_a_second_analyst_loses_the_claim_cleanly(
    people: Opener, in_review: CaseInReview, sessions: async_sessionmaker[AsyncSession]
) -> None:
    anna, adam = await people(), await people()
    await anna.sign_in("anna.analityk")
    await adam.sign_in("adam.analityk")
    task_path = f"/tasks/{in_review.analyst_task_id}"
    forms = [await person.page(task_path) for person in (anna, adam)]
    assert all(f.status_code == 200 for f in forms)

    # Both press "Take this task" at the same moment; the engine decides who was first.
    answers = await asyncio.gather(
        anna.post_form(f"{task_path}/claim", {}, page=task_path),
        adam.post_form(f"{task_path}/claim", {}, page=task_path),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [303, 409], [a.text[:300] for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert "Someone else has just taken this task" in loser.text or "Ktoś inny" in loser.text
    winner = "anna.analityk" if answers[0].status_code == 303 else "adam.analityk"

    async def assigned() -> str | None:
        return (await task_row(sessions, in_review.analyst_task_id)).assignee

    assert await eventually(assigned) == winner
    # Later the loser's claim is refused the same way, with the winner still holding it.
    late = (adam if winner == "anna.analityk" else anna).post_form
    again = await late(f"{task_path}/claim", {}, page=task_path)
    assert again.status_code == 409
    await asyncio.sleep(1)
    assert (await task_row(sessions, in_review.analyst_task_id)).assignee == winner


async def test_a_call_centre_agent_gets_404_for_an_analyst_task(
    people: Opener, in_review: CaseInReview
) -> None:
    celina = await people()
    await celina.sign_in("celina.konsultant")
    task_path = f"/tasks/{in_review.analyst_task_id}"
    page = await celina.page(task_path)
    assert page.status_code == 404
    api = await celina.client.get(f"/api{task_path}")
    assert api.status_code == 404 and api.json()["detail"] == "Not found"
    claim = await celina.client.post(f"/api{task_path}/assignment", headers=celina.csrf_headers())
    assert claim.status_code == 404
    for tab in ("mine", "unassigned", "all"):
        listed = await celina.page(f"/?tab={tab}")
        assert in_review.case_number not in listed.text
    inbox = await celina.client.get("/api/tasks?tab=unassigned")
    assert str(in_review.analyst_task_id) not in inbox.text


async def test_a_manager_sees_every_task_and_reassigns_one(
    people: Opener, in_review: CaseInReview, sessions: async_sessionmaker[AsyncSession]
) -> None:
    magda, adam = await people(), await people()
    await magda.sign_in("magda.kierownik")
    await adam.sign_in("adam.analityk")
    # Filtered by the case: the suite's other tests leave tasks of their own in these tabs.
    only = f"case_number={in_review.case_number}"
    everything = await magda.page(f"/?tab=all&{only}")
    assert in_review.case_number in everything.text
    assert (await task_row(sessions, in_review.analyst_task_id)).assignee is None

    task_path = f"/tasks/{in_review.analyst_task_id}"
    moved = await magda.post_form(
        f"{task_path}/reassign", {"assignee": "adam.analityk"}, page=task_path
    )
    assert moved.status_code == 303, moved.text

    async def assigned() -> str | None:
        return (await task_row(sessions, in_review.analyst_task_id)).assignee

    assert await eventually(assigned) == "adam.analityk"
    mine = await adam.page(f"/?tab=mine&{only}")
    assert in_review.case_number in mine.text
    reassigned = await staff_events(sessions, audit.TASK_REASSIGNED, in_review.case_id)
    assert reassigned[-1].staff_name == "Magda Kamińska"
    assert reassigned[-1].details["to"] == "adam.analityk"
    # An analyst is no manager: the same form is refused.
    refused = await adam.post_form(
        f"{task_path}/reassign", {"assignee": "anna.analityk"}, page=task_path
    )
    assert refused.status_code == 409
    assert (await task_row(sessions, in_review.analyst_task_id)).assignee == "adam.analityk"


# -- cases -----------------------------------------------------------------------------------


async def test_search_by_full_pesel_finds_the_case_and_a_different_pesel_does_not(
    people: Opener, in_review: CaseInReview, sessions: async_sessionmaker[AsyncSession]
) -> None:
    celina = await people()
    await celina.sign_in("celina.konsultant")
    pesel = in_review.participant["pesel"]
    found = await celina.post_form("/cases/", {"customer": pesel}, page="/cases/")
    assert found.status_code == 303
    assert pesel not in found.headers["location"], "the number never goes into a URL"
    assert parse_qs(urlsplit(found.headers["location"]).query)["who"][0].startswith("pesel:")
    listed = await celina.page(found.headers["location"])
    assert in_review.case_number in listed.text
    assert pesel not in listed.text

    other = make_pesel(date(1971, 3, 4), 4321)
    assert other != pesel
    missing = await celina.post_form("/cases/", {"customer": other}, page="/cases/")
    empty = await celina.page(missing.headers["location"])
    assert in_review.case_number not in empty.text
    wrong = await celina.post_form("/cases/", {"customer": "12345"}, page="/cases/")
    assert wrong.status_code == 400 and "PESEL" in wrong.text

    searches = await staff_events(sessions, audit.CASES_SEARCHED)
    assert all(pesel not in str(e.details) and other not in str(e.details) for e in searches)
    assert searches[-1].staff_name == "Celina Wiśniewska" and searches[-1].details["customer"]

    case_page = await celina.page(f"/cases/{in_review.case_id}")
    assert case_page.status_code == 200 and in_review.case_number in case_page.text
    viewed = await staff_events(sessions, audit.CASE_VIEWED, in_review.case_id)
    assert viewed and viewed[-1].details["username"] == "celina.konsultant"


# -- the ID token ---------------------------------------------------------------------------


async def test_a_tampered_expired_or_wrong_audience_id_token_is_refused(
    keycloak: KeycloakServer, staff_settings: Settings
) -> None:
    discovery = keycloak.discovery()
    redirect_uri = f"{staff_settings.staff_public_base_url}/auth/callback"
    with browser() as client:
        request, page = start_authorization(client, discovery, redirect_uri)
        after = submit_login(client, page, "anna.analityk", "demo-password")
        code = authorization_code(follow_to_redirect_uri(client, after, redirect_uri), request)
    tokens = exchange_code(discovery, code, request).json()
    id_token = tokens["id_token"]

    def verifier(client_id: str = "staff-dashboard", clock: FakeClock | None = None) -> OidcClient:
        return OidcClient(
            issuer=keycloak.issuer,
            client_id=client_id,
            client_secret=staff_settings.staff_oidc_client_secret,
            redirect_uri=redirect_uri,
            staff_role=staff_settings.staff_role,
            manager_role=staff_settings.staff_manager_role,
            clock=clock,
        )

    good = verifier()
    claims = await good.verify_id_token(id_token, nonce=request.nonce)
    assert good.actor_from(claims).groups == frozenset({"credit-analysts"})

    header, payload, signature = id_token.split(".")
    forged = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["realm_access"] = {"roles": ["staff", "team-manager"]}
    tampered_payload = base64.urlsafe_b64encode(msgspec.json.encode(forged)).rstrip(b"=").decode()
    with pytest.raises(SignInError):
        await good.verify_id_token(f"{header}.{tampered_payload}.{signature}", nonce=request.nonce)
    with pytest.raises(SignInError):
        await good.verify_id_token(f"{header}.{payload}.{signature[::-1]}", nonce=request.nonce)
    with pytest.raises(SignInError):
        await good.verify_id_token(id_token, nonce="another-sign-in")
    late = verifier(clock=FakeClock(float(claims["exp"]) + 3600))
    with pytest.raises(SignInError):
        await late.verify_id_token(id_token, nonce=request.nonce)
    elsewhere = verifier(client_id="another-application")
    with pytest.raises(SignInError):
        await elsewhere.verify_id_token(id_token, nonce=request.nonce)
    for client in (good, late, elsewhere):
        await client.aclose()


# -- documents --------------------------------------------------------------------------------


async def test_a_rejected_document_reaches_the_participant_and_a_new_one_is_accepted(
    people: Opener,
    in_review: CaseInReview,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        proof = await session.scalar(select(Document).where(Document.case_id == in_review.case_id))
    assert proof is not None and proof.state is DocumentState.UPLOADED
    anna, celina = await people(), await people()
    await anna.sign_in("anna.analityk")
    await celina.sign_in("celina.konsultant")
    case_path = f"/cases/{in_review.case_id}"

    # Only whoever works on the case's review decides on its documents.
    not_hers = await celina.post_form(
        f"/documents/{proof.id}/review", {"decision": "reject", "note": "?"}, page=case_path
    )
    assert not_hers.headers["location"].startswith(f"{case_path}?problem=not-yours")
    await anna.post_form(f"/tasks/{in_review.analyst_task_id}/claim", {}, page=case_path)
    case_page = await anna.page(case_path)
    assert f'action="/documents/{proof.id}/review"' in case_page.text
    no_reason = await anna.post_form(
        f"/documents/{proof.id}/review", {"decision": "reject", "note": " "}, page=case_path
    )
    assert "problem=reason" in no_reason.headers["location"]
    reason = "Zaświadczenie jest nieczytelne, prosimy o skan w lepszej jakości."
    rejected = await anna.post_form(
        f"/documents/{proof.id}/review",
        {"decision": "reject", "note": reason, "return_to": case_path},
        page=case_path,
    )
    assert rejected.status_code == 303
    assert rejected.headers["location"].startswith(f"{case_path}?notice=rejected")
    reviewed = await staff_events(sessions, audit.DOCUMENT_REVIEWED, in_review.case_id)
    assert reviewed[-1].staff_name == "Anna Kowalska" and reviewed[-1].details["accepted"] is False

    async with AsyncTestClient(panel_app(settings)) as participant:
        await sign_in(participant, in_review.participant_id)
        overview = await participant.get("/case/")
        assert reason in overview.text
        # The participant never learns who at the bank decided.
        assert "Anna" not in overview.text and "Kowalska" not in overview.text
        replaced = await participant.post(
            f"/documents/{proof.id}/replacement",
            data={"_csrf_token": csrf_token(participant)},
            files={"file": ("income-proof-2.pdf", PDF_BYTES, "application/pdf")},
            follow_redirects=False,
        )
        assert replaced.status_code == 303, replaced.text

    async with sessions() as session:
        new = await session.scalar(select(Document).where(Document.replaces_id == proof.id))
    assert new is not None and new.state is DocumentState.UPLOADED
    again = await anna.page(case_path)
    assert "income-proof-2.pdf" in again.text
    assert f'action="/documents/{new.id}/review"' in again.text
    accepted = await anna.post_form(
        f"/documents/{new.id}/review", {"decision": "accept"}, page=case_path
    )
    assert "notice=accepted" in accepted.headers["location"]
    async with sessions() as session:
        stored = await session.get(Document, new.id)
    assert stored is not None and stored.state is DocumentState.ACCEPTED


async def test_staff_download_what_a_participant_signed_from_the_case_page(
    people: Opener,
    in_review: CaseInReview,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        signature = await session.scalar(
            select(SignatureRecord).where(SignatureRecord.case_id == in_review.case_id)
        )
    assert signature is not None
    celina = await people()
    await celina.sign_in("celina.konsultant")
    case_path = f"/cases/{in_review.case_id}"
    link = f"{case_path}/signatures/{signature.id}"
    case_page = await celina.page(case_path)
    assert f'href="{link}"' in case_page.text
    assert signature.document_sha256 in case_page.text

    download = await celina.client.get(link)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    # Byte for byte what the participant's code was bound to.
    assert download.content == signature.content
    assert hashlib.sha256(download.content).hexdigest() == signature.document_sha256
    downloads = await staff_events(sessions, audit.DOCUMENT_DOWNLOADED, in_review.case_id)
    [event] = [e for e in downloads if e.details.get("signature") == str(signature.id)]
    assert event.actor_kind == "staff" and event.staff_name == "Celina Wiśniewska"
    assert event.participant_id == signature.participant_id

    # The case page's rule: a case nobody may see here is a 404, and so is a signature
    # asked for through a case it does not belong to.
    other = await open_case_via_channel(settings, [participant(credit.ROLE_PRIMARY_BORROWER, 0)])
    for path in (
        f"/cases/{other['caseId']}/signatures/{signature.id}",
        f"/cases/{uuid.uuid4()}/signatures/{signature.id}",
        f"{case_path}/signatures/{uuid.uuid4()}",
    ):
        assert (await celina.page(path)).status_code == 404, path
    assert (await celina.page(f"/cases/{uuid.uuid4()}")).status_code == 404
    # Nobody signed out gets it.
    stranger = await people()
    refused = await stranger.client.get(
        link, headers={"accept": "text/html"}, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
