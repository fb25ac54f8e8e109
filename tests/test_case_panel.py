"""The participant's case: overview, documents and signing, against the real engine."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core import constants as c
from panel_core.clock import FakeClock, SystemClock
from panel_core.db.models import (
    Document,
    FormDefinition,
    PanelTask,
    SignatureRecord,
    SmsMessage,
    TaskSubmission,
)
from panel_core.identity.service import LoginService
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    PDF_BYTES,
    csrf_headers,
    csrf_token,
    eventually,
    form_token,
    open_case_via_channel,
    person,
    sign_in,
    upload_document,
)
from tests.pdf_text import pdf_text
from tests.sms_inbox import code_in, message_naming

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

ANSWERS: dict[str, dict[str, Any]] = {
    credit.ELEMENT_TASK_CONSENTS: {"consentCreditCheck": True, "consentDataProcessing": True},
    credit.ELEMENT_TASK_INCOME: {"employmentType": "employed", "monthlyNetIncome": "7300"},
    credit.ELEMENT_TASK_QUESTIONNAIRE: {
        "relationshipToBorrower": "spouse",
        "maritalStatus": "single",
        "dependants": "0",
    },
}


async def engine_deploy(stack: Stack, name: str, content: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as engine:
        return await engine.post(
            f"{stack.settings.camunda_rest_url}/v2/deployments",
            files={"resources": (name, content, "application/octet-stream")},
            timeout=30,
        )


async def open_tasks(client: AsyncTestClient[Any], element: str | None = None) -> list[Any]:
    async def probe() -> list[Any] | None:
        listed = (await client.get("/api/participant/tasks")).json()
        found = [t for t in listed if t["state"] == "open" and element in (None, t["elementId"])]
        return found if len(found) >= (1 if element else 3) else None

    tasks: list[Any] = await eventually(probe, within=60)
    return tasks


async def finish_share(client: AsyncTestClient[Any]) -> dict[str, Any]:
    """Complete the three parallel tasks; returns the signing task that follows."""
    for task in await open_tasks(client):
        if task["elementId"] == credit.ELEMENT_TASK_INCOME:
            assert (await upload_document(client, task["id"], "incomeProof")).status_code == 201
        done = await client.post(
            f"/api/participant/tasks/{task['id']}/completion",
            json={"variables": ANSWERS[task["elementId"]]},
            headers=csrf_headers(client),
        )
        assert done.status_code == 202, done.text
    (signing,) = await open_tasks(client, credit.ELEMENT_TASK_SIGN)
    return dict(signing)


async def test_the_overview_tells_the_case_in_the_participants_language(stack: Stack) -> None:
    case = await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )
    me, other = (p["participantId"] for p in case["participants"])
    async with AsyncTestClient(create_app(stack.settings)) as co_borrower:
        await sign_in(co_borrower, other)
        await open_tasks(co_borrower)
        consents = (await open_tasks(co_borrower, credit.ELEMENT_TASK_CONSENTS))[0]
        await co_borrower.post(
            f"/api/participant/tasks/{consents['id']}/completion",
            json={"variables": ANSWERS[credit.ELEMENT_TASK_CONSENTS]},
            headers=csrf_headers(co_borrower),
        )
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        await open_tasks(client)
        page = (await client.get("/case/")).text
        # Polish by default, with the case type's own texts from its descriptor.
        assert '<html lang="pl">' in page
        assert "Zbieramy informacje" in page and "Co dalej:" in page
        assert 'aria-current="step"' in page and "Analiza wniosku" in page
        assert "Złóż zgody" in page and "Zaświadczenie o dochodach" in page
        assert "Dlaczego bank pyta o mój numer PESEL?" in page
        # What the co-borrower did shows as their role, with none of their answers.
        assert "Współkredytobiorca 1: wykonano „Złóż zgody”" in page
        switched = await client.get("/language/en?next=/case/", follow_redirects=False)
        assert switched.status_code == 303 and switched.headers["location"] == "/case/"
        page = (await client.get("/case/")).text
        assert '<html lang="en">' in page
        assert "Collecting information" in page and "What happens next:" in page
        assert "Co-borrower 1 completed “Give your consents”" in page
        # The switch never sends anyone off the site.
        for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            away = await client.get(f"/language/pl?next={target}", follow_redirects=False)
            assert away.headers["location"] == "/"


async def test_documents_are_downloadable_by_their_owner_only(stack: Stack) -> None:
    case = await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )
    me, other = (p["participantId"] for p in case["participants"])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        (income,) = await open_tasks(client, credit.ELEMENT_TASK_INCOME)
        page = await client.get(f"/tasks/{income['id']}")
        assert 'enctype="multipart/form-data"' in page.text
        # A page post with a wrong file keeps the typed answers and says why, at the field.
        refused = await client.post(
            f"/tasks/{income['id']}",
            data={
                "_csrf_token": form_token(page.text),
                "monthlyNetIncome": "7300",
                "action": "upload",
            },
            files={"incomeProof": ("statement.pdf", b"<html>not a pdf</html>", "application/pdf")},
        )
        assert refused.status_code == 400
        assert "error-incomeProof" in refused.text and 'value="7300"' in refused.text
        accepted = await client.post(
            f"/tasks/{income['id']}",
            data={"_csrf_token": form_token(page.text), "action": "upload"},
            files={"incomeProof": ("Zaświadczenie.pdf", PDF_BYTES, "text/plain")},
            follow_redirects=False,
        )
        assert accepted.status_code == 303
        overview = (await client.get("/case/")).text
        assert "Zaświadczenie.pdf" in overview and "czeka na sprawdzenie" in overview
        document_id = overview.split('href="/documents/')[1].split('"')[0]
        download = await client.get(f"/documents/{document_id}")
        assert download.content == PDF_BYTES
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.headers["x-content-type-options"] == "nosniff"
    async with AsyncTestClient(create_app(stack.settings)) as intruder:
        await sign_in(intruder, other)
        theirs = await intruder.get(f"/documents/{document_id}")
        nothing = await intruder.get(f"/documents/{uuid.uuid4()}")
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.content == nothing.content
    # The bank rejects it with a reason; the participant sees both.
    async with AsyncTestClient(create_app(stack.settings)) as bank:
        verdict = await bank.post(
            f"/api/channel/documents/{document_id}/review",
            json={"accepted": False, "note": "Nieczytelny skan"},
            headers={"authorization": "Bearer demo-channel-token"},
        )
        assert verdict.status_code == 201, verdict.text
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        overview = (await client.get("/case/")).text
        assert "Odrzucony" in overview and "Powód: Nieczytelny skan" in overview


async def test_an_oversized_request_is_refused_before_it_is_read(stack: Stack) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    limit = stack.settings.document_max_bytes * stack.settings.document_max_files_per_request
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        (income,) = await open_tasks(client, credit.ELEMENT_TASK_INCOME)
        response = await upload_document(
            client, income["id"], "incomeProof", content=PDF_BYTES + b"0" * (limit + 2**20)
        )
        assert response.status_code == 413


async def test_a_signing_code_works_only_for_the_document_it_was_sent_for(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    who = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case_via_channel(stack.settings, [who])
    me = case["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        signing = await finish_share(client)
        url = f"/api/participant/tasks/{signing['id']}"
        document = (await client.get(f"{url}/signing-document")).json()
        assert document["mediaType"] == "application/pdf"
        shown = await client.get(document["contentUrl"])
        assert shown.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(shown.content).hexdigest() == document["sha256"]
        assert document["sizeBytes"] == len(shown.content)
        text = pdf_text(shown.content)
        assert "7 300,00" in text and "income-proof.pdf" in text
        asked = await client.post(f"{url}/signing-code", headers=csrf_headers(client))
        assert asked.status_code == 202
        sms = await message_naming(stack.settings.redis_url, who["phone"], document["sha256"][:8])
        code = code_in(sms)

        # The application changes after the code was sent: the code no longer signs it.
        async with sessions() as session:
            await session.execute(
                update(TaskSubmission)
                .where(TaskSubmission.answers["monthlyNetIncome"].as_string() == "7300")
                .values(answers={"employmentType": "employed", "monthlyNetIncome": 9900})
            )
            await session.commit()
        changed = (await client.get(f"{url}/signing-document")).json()
        assert changed["sha256"] != document["sha256"]
        assert "9 900,00" in pdf_text((await client.get(changed["contentUrl"])).content)
        refused = await client.post(
            f"{url}/completion",
            json={"variables": {"signApplication": True, "signingCode": code}},
            headers=csrf_headers(client),
        )
        assert refused.status_code == 400
        assert set(refused.json()["extra"]["errors"]) == {"signingCode"}
        # The page that showed the old document is told so, whatever code it sends.
        stale = await client.post(
            f"{url}/completion",
            json={
                "variables": {
                    "signApplication": True,
                    "signingCode": code,
                    "documentSha256": document["sha256"],
                }
            },
            headers=csrf_headers(client),
        )
        assert stale.status_code == 400

        await client.post(f"{url}/signing-code", headers=csrf_headers(client))
        fresh = code_in(
            await message_naming(stack.settings.redis_url, who["phone"], changed["sha256"][:8])
        )
        signed = await client.post(
            f"{url}/completion",
            json={
                "variables": {
                    "signApplication": True,
                    "signingCode": fresh,
                    "documentSha256": changed["sha256"],
                }
            },
            headers=csrf_headers(client),
        )
        assert signed.status_code == 202, signed.text
    async with sessions() as session:
        record = await session.scalar(
            select(SignatureRecord).where(SignatureRecord.participant_id == uuid.UUID(me))
        )
    assert record is not None
    assert record.document_sha256 == changed["sha256"]
    # The PDF itself is kept, the very bytes the code was bound to.
    assert record.media_type == "application/pdf" and record.filename.endswith(".pdf")
    assert hashlib.sha256(record.content).hexdigest() == record.document_sha256
    assert record.verification["method"] == "sms-one-time-code"
    assert record.verification["phone"].endswith(who["phone"][-3:])


async def test_no_signing_code_is_sent_while_the_access_is_locked(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    me = case["participants"][0]["participantId"]
    settings = msgspec.structs.replace(
        stack.settings,
        login_max_failures=3,
        login_lock_seconds=60,
        login_max_consecutive_failures=4,
    )
    clock = FakeClock()

    async def codes_queued() -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(SmsMessage)
                .where(
                    SmsMessage.participant_id == uuid.UUID(me),
                    SmsMessage.purpose == c.SMS_SIGNING_CODE,
                )
            )
        return int(count or 0)

    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        await sign_in(client, me)
        signing = await finish_share(client)
        url = f"/api/participant/tasks/{signing['id']}"
        page_url = f"/tasks/{signing['id']}"

        async def wrong_signature() -> None:
            refused = await client.post(
                f"{url}/completion",
                json={"variables": {"signApplication": True, "signingCode": "000000"}},
                headers=csrf_headers(client),
            )
            assert refused.status_code == 400, refused.text

        async def ask_on_the_page() -> str:
            asked = await client.post(
                f"{page_url}/signing-code",
                data={"_csrf_token": csrf_token(client)},
                follow_redirects=False,
            )
            assert asked.status_code == 303
            location = asked.headers["location"]
            shown = await client.get(location)
            assert shown.status_code == 200
            return f"{location}\n{shown.text}"

        for _ in range(3):
            await wrong_signature()
        locked = await client.post(f"{url}/signing-code", headers=csrf_headers(client))
        assert locked.status_code == 423, locked.text
        assert locked.json()["extra"]["reason"] == "locked"
        page = await ask_on_the_page()
        assert "?code=locked" in page and "nie możemy wysłać kodu do podpisu" in page

        # After the lock, one more wrong code reaches the cap: locked until the bank unlocks.
        clock.advance(61)
        await wrong_signature()
        blocked = await client.post(f"{url}/signing-code", headers=csrf_headers(client))
        assert blocked.status_code == 423
        assert blocked.json()["extra"]["reason"] == "blocked"
        page = await ask_on_the_page()
        assert "?code=blocked" in page and "Zadzwoń do banku, aby go odblokować." in page
        assert await codes_queued() == 0

        redis = Redis.from_url(settings.redis_url)
        try:
            await LoginService(settings, sessions, redis, SystemClock()).unlock(uuid.UUID(me))
        finally:
            await redis.aclose()
        sent = await client.post(f"{url}/signing-code", headers=csrf_headers(client))
        assert sent.status_code == 202, sent.text
        assert await codes_queued() == 1


async def test_a_form_deployed_around_the_checks_is_flagged_and_never_misjudged(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Straight to the engine, as Camunda Modeler's deploy button does.
    form = {
        "id": f"modeler-form-{uuid.uuid4().hex[:8]}",
        "type": "default",
        "schemaVersion": 16,
        "components": [
            {
                "type": "textfield",
                "key": "when",
                "id": "Field_when",
                "label": "When",
                "conditional": {"hide": '=today() > date("2020-01-01")'},
            }
        ],
    }
    deployed = await engine_deploy(stack, f"{form['id']}.form", json.dumps(form).encode())
    assert deployed.status_code == 200, deployed.text

    async def flagged() -> list[str] | None:
        async with sessions() as session:
            problems = await session.scalar(
                select(FormDefinition.problems).where(FormDefinition.form_id == form["id"])
            )
        return list(problems) if problems else None

    problems = await eventually(flagged, within=30)
    assert any("when" in problem for problem in problems)

    # A task pinned to such a form shows why it cannot be filled in and refuses answers.
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        (income,) = await open_tasks(client, credit.ELEMENT_TASK_INCOME)
        async with sessions() as session:
            await session.execute(
                update(PanelTask)
                .where(PanelTask.id == uuid.UUID(income["id"]))
                .values(form_schema=form)
            )
            await session.commit()
        page = await client.get(f"/tasks/{income['id']}")
        assert "nie umie sprawdzić" in page.text and 'name="when"' not in page.text
        refused = await client.post(
            f"/api/participant/tasks/{income['id']}/completion",
            json={"variables": {"when": "now"}},
            headers=csrf_headers(client),
        )
        assert refused.status_code == 409


async def test_a_form_reads_its_own_process_variables_and_nothing_else(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The questionnaire asks co-borrowers only, judged on ``participant.role``: a variable
    of the participant's own iteration of the multi-instance share, not of the process."""
    case = await open_case_via_channel(
        stack.settings,
        [person(credit.ROLE_PRIMARY_BORROWER, 0), person(credit.ROLE_CO_BORROWER, 1)],
    )
    me, other = (p["participantId"] for p in case["participants"])
    question = "Kim jesteś dla głównego kredytobiorcy?"

    async def questionnaire(client: AsyncTestClient[Any]) -> dict[str, Any]:
        (task,) = await open_tasks(client, credit.ELEMENT_TASK_QUESTIONNAIRE)

        async def with_variables() -> dict[str, Any] | None:
            detail: dict[str, Any] = (
                await client.get(f"/api/participant/tasks/{task['id']}")
            ).json()
            return detail if detail["variables"].get(c.VAR_PARTICIPANT) else None

        return await eventually(with_variables, within=30)

    async with AsyncTestClient(create_app(stack.settings)) as co_borrower:
        await sign_in(co_borrower, other)
        task = await questionnaire(co_borrower)
        # Only what the form names: the participant's own entry, never the case's list.
        assert task["variables"] == {
            c.VAR_PARTICIPANT: {c.KEY_PARTICIPANT_ID: other, c.KEY_ROLE: credit.ROLE_CO_BORROWER}
        }
        page = (await co_borrower.get(f"/tasks/{task['id']}")).text
        assert question in page
        missing = await co_borrower.post(
            f"/api/participant/tasks/{task['id']}/completion",
            json={"variables": {"maritalStatus": "single", "dependants": "0"}},
            headers=csrf_headers(co_borrower),
        )
        assert missing.status_code == 400
        assert set(missing.json()["extra"]["errors"]) == {"relationshipToBorrower"}

    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me)
        task = await questionnaire(client)
        assert task["variables"][c.VAR_PARTICIPANT][c.KEY_ROLE] == credit.ROLE_PRIMARY_BORROWER
        # Hidden at once for the primary borrower, and stripped if sent all the same.
        page = (await client.get(f"/tasks/{task['id']}")).text
        assert question not in page and "Stan cywilny" in page
        done = await client.post(
            f"/api/participant/tasks/{task['id']}/completion",
            json={"variables": ANSWERS[credit.ELEMENT_TASK_QUESTIONNAIRE]},
            headers=csrf_headers(client),
        )
        assert done.status_code == 202, done.text
    async with sessions() as session:
        answers = await session.scalar(
            select(TaskSubmission.answers)
            .join(PanelTask, PanelTask.id == TaskSubmission.panel_task_id)
            .where(PanelTask.id == uuid.UUID(task["id"]))
        )
    assert answers == {"maritalStatus": "single", "dependants": 0, "hasOtherLoans": False}


async def test_no_file_is_kept_unless_the_csrf_token_comes_before_it(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Files stream to storage as they arrive, so the token must be checked before them."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    boundary = "panel-boundary"

    def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
        out = b""
        for name, filename, content in parts:
            disposition = f'form-data; name="{name}"'
            if filename:
                disposition += f'; filename="{filename}"\r\nContent-Type: application/pdf'
            out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            out += content + b"\r\n"
        return out + f"--{boundary}--\r\n".encode()

    async def documents_of(task_id: str) -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Document)
                .where(Document.panel_task_id == uuid.UUID(task_id))
            )
        return int(count or 0)

    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        (income,) = await open_tasks(client, credit.ELEMENT_TASK_INCOME)
        page = await client.get(f"/tasks/{income['id']}")
        token = form_token(page.text)
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        for url in (f"/tasks/{income['id']}", f"/api/participant/tasks/{income['id']}/documents"):
            late = await client.post(
                url,
                content=multipart(
                    ("incomeProof", "proof.pdf", PDF_BYTES),
                    ("_csrf_token", None, token.encode()),
                    ("action", None, b"upload"),
                ),
                headers=headers,
            )
            assert late.status_code == 403, late.text
            missing = await client.post(
                url, content=multipart(("incomeProof", "proof.pdf", PDF_BYTES)), headers=headers
            )
            assert missing.status_code == 403
        assert await documents_of(income["id"]) == 0
        kept = await client.post(
            f"/tasks/{income['id']}",
            content=multipart(
                ("_csrf_token", None, token.encode()),
                ("incomeProof", "proof.pdf", PDF_BYTES),
                ("action", None, b"upload"),
            ),
            headers=headers,
            follow_redirects=False,
        )
        assert kept.status_code == 303, kept.text
        assert await documents_of(income["id"]) == 1
