"""The BFF's answers to requests that are too big, too deep, too early or not its own, and
the guarantees that outlive a request: logout, the client's address, what was signed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from bff.dependencies import ParticipantContext, ParticipantController
from devtools.ports import free_port
from panel_core.db.models import SignatureRecord, TaskSubmission
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    PDF_BYTES,
    csrf_headers,
    csrf_token,
    form_token,
    forms_done_until_signing,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
    sign_task,
)
from tests.pdf_text import pdf_text

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def test_framework_answers_carry_the_security_headers(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        unknown = await client.get("/no/such/page")
        wrong_method = await client.delete("/login")
        no_csrf = await client.post("/login", data={"case": "x"})
    assert (unknown.status_code, wrong_method.status_code, no_csrf.status_code) == (404, 405, 403)
    for answer in (unknown, wrong_method, no_csrf):
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


async def test_only_the_upload_routes_take_large_bodies(stack: Stack) -> None:
    two_megabytes = b"x" * (2 * 1024 * 1024)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await client.get("/login")
        login = await client.post(
            "/login",
            content=two_megabytes,
            headers={"content-type": "application/x-www-form-urlencoded", **csrf_headers(client)},
        )
        channel = await client.post(
            "/api/channel/cases",
            content=two_megabytes,
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {DEMO_CHANNEL_TOKEN}",
            },
        )
    assert login.status_code == 413
    assert channel.status_code == 413


async def test_an_unauthenticated_body_is_refused_before_it_is_read(stack: Stack) -> None:
    """The channel token and the participant's session are checked before any byte of the
    body: an 11 MB body without them gets 401, not the 413 that reading it would give."""
    eleven_megabytes = b"[" * (11 * 1024 * 1024)
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await client.get("/login")
        channel = await client.post(
            "/api/channel/cases",
            content=eleven_megabytes,
            headers={"content-type": "application/json"},
        )
        participant = await client.post(
            f"/api/participant/tasks/{uuid.uuid4()}/completion",
            content=eleven_megabytes,
            headers={"content-type": "application/json", **csrf_headers(client)},
        )
    assert channel.status_code == 401
    assert participant.status_code == 401


async def test_deeply_nested_json_is_a_clean_refusal(stack: Stack) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    deep = "[" * 1000 + "]" * 1000
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
        answer = await client.post(
            f"/api/participant/tasks/{tasks[0]['id']}/completion",
            content=f'{{"variables": {{"consentCreditCheck": {deep}}}}}'.encode(),
            headers={"content-type": "application/json", **csrf_headers(client)},
        )
        channel = await client.post(
            "/api/channel/cases",
            content=f'{{"caseType": {deep}}}'.encode(),
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {DEMO_CHANNEL_TOKEN}",
            },
        )
    assert answer.status_code == 400, answer.text
    assert channel.status_code == 400, channel.text


async def test_a_text_field_in_an_unknown_charset_is_a_clean_refusal(stack: Stack) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
        income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
        boundary = "panelboundary"
        body = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="_csrf_token"\r\n\r\n'
            f"{csrf_token(client)}\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="employerName"\r\n'
            "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
            "Example\r\n"
            f"--{boundary}--\r\n"
        ).encode()
        answer = await client.post(
            f"/tasks/{income['id']}",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert answer.status_code == 400


async def test_logout_is_final_even_for_a_request_still_running(stack: Stack) -> None:
    """A request that loaded the session before the logout and answers after it must not
    write the session back (a page's background refresh, say)."""
    released = asyncio.Event()
    entered = asyncio.Event()

    class SlowController(ParticipantController):
        path = "/slow"

        @get("/")
        async def slow(self, participant: NamedDependency[ParticipantContext]) -> dict[str, str]:
            entered.set()
            await released.wait()
            return {"participant": str(participant.participant_id)}

    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    app = create_app(stack.settings)
    app.register(SlowController)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/dev/sign-in")
        signed_in = await client.post(
            "/dev/sign-in",
            data={
                "participant": case["participants"][0]["participantId"],
                "_csrf_token": form_token(page.text),
            },
        )
        assert signed_in.status_code == 303
        assert (await client.get("/api/participant/tasks")).status_code == 200
        session_cookie = dict(client.cookies)
        in_flight = asyncio.create_task(client.get("/slow/"))
        await asyncio.wait_for(entered.wait(), timeout=10)
        logout = await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
        assert logout.status_code == 200
        released.set()
        assert (await in_flight).status_code == 200
        # Whatever cookie the slow answer set, and the one from before: both are dead.
        after = await client.get("/api/participant/tasks")
        client.cookies.clear()
        client.cookies.update(session_cookie)
        replayed = await client.get("/api/participant/tasks")
    assert after.status_code == 401
    assert replayed.status_code == 401


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[str]:
    """The app behind a real uvicorn on loopback: requests run concurrently, and arrive from
    127.0.0.1 as they would through a proxy on the same host."""
    port = free_port()
    # uvicorn's own proxy-header handling (which trusts 127.0.0.1) is off, as the operations
    # guide says to run it: PANEL_TRUSTED_PROXIES alone decides.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def login_attempts(base: str, forwarded_for: list[str | None]) -> list[int]:
    # A case number of its own, so that no other limit (codes per identity) is reached.
    case_number = f"KR-2026-{secrets.randbelow(10**8):08d}"
    async with httpx.AsyncClient(base_url=base) as client:
        await client.get("/login")
        codes = []
        for address in forwarded_for:
            headers = {"x-forwarded-for": address} if address else {}
            response = await client.post(
                "/login",
                data={
                    "case": case_number,
                    "fragment": "1234",
                    "_csrf_token": client.cookies["csrftoken"],
                },
                headers=headers,
            )
            codes.append(response.status_code)
        return codes


async def test_the_login_limit_counts_clients_behind_a_trusted_proxy(stack: Stack) -> None:
    """Behind the bank's proxy every request comes from its address: only a request from a
    trusted proxy has its X-Forwarded-For believed, so one attacker cannot spend everybody's
    per-address budget, and nobody else can forge an address."""
    limited: dict[str, Any] = {"login_ip_limit": 2, "login_case_limit": 1000}
    behind = msgspec.structs.replace(stack.settings, trusted_proxies="127.0.0.0/8", **limited)
    direct = msgspec.structs.replace(stack.settings, trusted_proxies="", **limited)
    redis_keys = "panel:login:rate:ip:*"
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        for key in [k async for k in redis.scan_iter(redis_keys)]:
            await redis.delete(key)
        async with serving(create_app(behind)) as base:
            attacker = await login_attempts(base, ["203.0.113.5"] * 3)
            someone_else = await login_attempts(base, ["198.51.100.7, 10.0.0.2"])
        for key in [k async for k in redis.scan_iter(redis_keys)]:
            await redis.delete(key)
        async with serving(create_app(direct)) as base:
            forged = await login_attempts(base, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    finally:
        await redis.aclose()
    assert attacker == [303, 303, 429]
    assert someone_else == [303]
    # Reached directly, the header is anyone's to send and is ignored.
    assert forged == [303, 303, 429]


async def test_what_was_signed_stays_readable_byte_for_byte(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    who = person(credit.ROLE_PRIMARY_BORROWER, 0)
    case = await open_case_via_channel(stack.settings, [who])
    participant_id = case["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, participant_id)
        sign = await forms_done_until_signing(client)
        shown = (await client.get(f"/api/participant/tasks/{sign['id']}/signing-document")).json()
        # The page shows the document and offers its PDF: the bytes the code will be bound to.
        task_page = await client.get(f"/tasks/{sign['id']}", headers={"accept": "text/html"})
        assert f'name="documentSha256" value="{shown["sha256"]}"' in task_page.text
        assert f'href="/tasks/{sign["id"]}/signing-document"' in task_page.text
        preview = await client.get(f"/tasks/{sign['id']}/signing-document")
        assert (await client.get(shown["contentUrl"])).content == preview.content
        signed = await sign_task(client, sign["id"], who["phone"], stack.settings.redis_url)
        assert signed.status_code == 202

        [listed] = (await client.get("/api/participant/signatures/")).json()
        assert listed["sha256"] == shown["sha256"]
        download = await client.get(f"/documents/signed/{listed['id']}")
        # In another language the panel would build another text; what was signed does not.
        client.cookies.set("panel-lang", "en")
        overview = await client.get("/case/", headers={"accept": "text/html"})
        again = await client.get(f"/api/participant/signatures/{listed['id']}/content")

    assert download.status_code == again.status_code == 200
    assert download.content == again.content == preview.content
    assert hashlib.sha256(download.content).hexdigest() == shown["sha256"]
    assert download.headers["content-type"] == again.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-disposition"].endswith(".pdf")
    digest = base64.b64encode(bytes.fromhex(shown["sha256"])).decode()
    assert download.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert "Download what you signed" in overview.text
    # The file the participant attached is in its appendix, by name and fingerprint.
    signed_text = pdf_text(download.content)
    assert "income-proof.pdf" in signed_text
    assert hashlib.sha256(PDF_BYTES).hexdigest() in signed_text

    # Someone else's session gets the same answer as for no such document.
    other = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(stack.settings)) as stranger:
        await sign_in(stranger, other["participants"][0]["participantId"])
        assert (await stranger.get(f"/documents/signed/{listed['id']}")).status_code == 404
        assert (await stranger.get(f"/documents/signed/{uuid.uuid4()}")).status_code == 404
        content = f"/api/participant/signatures/{listed['id']}/content"
        assert (await stranger.get(content)).status_code == 404
        # Nor does anyone else see the document of a task of someone else's.
        assert (await stranger.get(f"/tasks/{sign['id']}/signing-document")).status_code == 404
        assert (await stranger.get(shown["contentUrl"])).status_code == 404

    # The database itself refuses to change a signature.
    async with sessions() as session:
        with pytest.raises(DBAPIError, match="immutable"):
            await session.execute(
                text("UPDATE signature_record SET content = 'forged' WHERE id = :id"),
                {"id": uuid.UUID(listed["id"])},
            )
        await session.rollback()
        record = await session.scalar(
            select(SignatureRecord).where(SignatureRecord.id == uuid.UUID(listed["id"]))
        )
        submission = await session.scalar(
            select(TaskSubmission).where(TaskSubmission.panel_task_id == uuid.UUID(sign["id"]))
        )
    assert record is not None and submission is not None
    assert record.content == download.content
    assert record.submission_id == submission.id
    assert json.loads(json.dumps(record.verification))["method"] == "sms-one-time-code"
