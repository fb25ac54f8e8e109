"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.identity.pesel import make_pesel
from panel_core.settings import Settings
from tests import credit
from tests.credit import CASE_TYPE_CREDIT

T = TypeVar("T")

VALID_ANSWERS: dict[str, dict[str, Any]] = {
    credit.ELEMENT_TASK_CONSENTS: {"consentCreditCheck": True, "consentDataProcessing": True},
    credit.ELEMENT_TASK_INCOME: {
        "employmentType": "employed",
        "monthlyNetIncome": "8500",
        "employerName": "Example Industries",
    },
    credit.ELEMENT_TASK_QUESTIONNAIRE: {
        "relationshipToBorrower": "partner",
        "maritalStatus": "married",
        "dependants": "2",
    },
}


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 30.0, interval: float = 0.2
) -> T:
    """Poll until the probe returns something truthy; fail with what it last returned."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s; last value: {last!r}")


async def engine_post(url: str, body: dict[str, Any]) -> httpx.Response:
    """A call to the engine's REST API, as a task list or operator would make it."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, json=body)


def csrf_token(client: AsyncTestClient[Any]) -> str:
    token = client.cookies.get("csrftoken") or client.cookies.get("__Host-csrftoken")
    assert token, "the CSRF cookie is set by any GET first"
    return token


def form_token(html: str) -> str:
    """The CSRF token a page's form carries in its hidden field."""
    match = re.search(r'<input type="hidden" name="_csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a hidden CSRF field"
    return match.group(1)


def csrf_headers(client: AsyncTestClient[Any]) -> dict[str, str]:
    return {"x-csrftoken": csrf_token(client)}


async def sign_in(client: AsyncTestClient[Any], participant_id: str) -> None:
    """Open a participant session through the demo-mode sign-in form."""
    page = await client.get("/dev/sign-in")
    assert page.status_code == 200
    response = await client.post(
        "/dev/sign-in",
        data={"participant": participant_id, "_csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def person(role: str, index: int, locale: str = "pl") -> dict[str, str]:
    """A participant as a channel registers them: valid PESEL, distinct fragment, phone."""
    serial = 1000 * (index + 1) + secrets.randbelow(1000)
    born = date(1960 + index, 1 + index % 12, 1 + secrets.randbelow(28))
    return {
        "role": role,
        "pesel": make_pesel(born, serial),
        "phone": f"+4850{secrets.randbelow(10**7):07d}",
        "locale": locale,
    }


async def open_case_via_channel(settings: Settings, people: list[dict[str, str]]) -> dict[str, Any]:
    """Open a credit case as a bank channel does, through the channels' API."""
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.post(
            "/api/channel/cases",
            json={"caseType": CASE_TYPE_CREDIT, "participants": people},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# A small, well-formed PDF (one blank A4 page, written by pikepdf) that every PDF reader and
# the panel's structure check accept.
PDF_BYTES = (
    b"%PDF-1.3\n%\xbf\xf7\xa2\xfe\n1 0 obj\n<< /Pages 2 0 R /Type /Catalog >>\nendobj\n"
    b"2 0 obj\n<< /Count 1 /Kids [ 3 0 R ] /Type /Pages >>\nendobj\n3 0 obj\n"
    b"<< /Contents 4 0 R /MediaBox [ 0 0 595 842 ] /Parent 2 0 R /Resources "
    b"<< >> /Type /Page >>\nendobj\n4 0 obj\n<< /Length 0 >>\nstream\n\nendstream\nendobj\n"
    b"xref\n0 5\n0000000000 65535 f \n0000000015 00000 n \n0000000064 00000 n \n"
    b"0000000123 00000 n \n0000000229 00000 n \ntrailer << /Root 1 0 R /Size 5 /ID "
    b"[<31415926535897932384626433832795><31415926535897932384626433832795>] >>\n"
    b"startxref\n278\n%%EOF\n"
)


async def upload_document(
    client: AsyncTestClient[Any],
    task_id: str,
    key: str,
    filename: str = "income-proof.pdf",
    content: bytes = PDF_BYTES,
) -> Any:
    """Send a file to a task's filepicker through the participant API."""
    return await client.post(
        f"/api/participant/tasks/{task_id}/documents",
        files={key: (filename, content, "application/pdf")},
        headers=csrf_headers(client),
    )


async def sign_task(client: AsyncTestClient[Any], task_id: str, phone: str, redis_url: str) -> Any:
    """Read the document, ask for a code, take it from the phone's SMS, and sign."""
    from tests.sms_inbox import code_in, message_naming, messages_naming

    document = await client.get(f"/api/participant/tasks/{task_id}/signing-document")
    assert document.status_code == 200, document.text
    sha256 = document.json()["sha256"]
    earlier = len(await messages_naming(redis_url, phone, sha256[:8]))
    sent = await client.post(
        f"/api/participant/tasks/{task_id}/signing-code", headers=csrf_headers(client)
    )
    assert sent.status_code == 202, sent.text
    # The SMS names the document it signs, so the person can check it against the page.
    text = await message_naming(redis_url, phone, sha256[:8], after=earlier)
    return await client.post(
        f"/api/participant/tasks/{task_id}/completion",
        json={
            "variables": {
                "signApplication": True,
                "signingCode": code_in(text),
                "documentSha256": sha256,
            }
        },
        headers=csrf_headers(client),
    )


async def open_tasks(client: AsyncTestClient[Any], count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        response = await client.get("/api/participant/tasks")
        assert response.status_code == 200, response.text
        tasks = [t for t in response.json() if t["state"] == "open"]
        return tasks if len(tasks) >= count else None

    return await eventually(probe, within=60)


async def complete(client: AsyncTestClient[Any], task: dict[str, Any]) -> httpx.Response:
    return await client.post(
        f"/api/participant/tasks/{task['id']}/completion",
        json={"variables": VALID_ANSWERS[task["elementId"]]},
        headers=csrf_headers(client),
    )


def cut_off(settings: Settings) -> Settings:
    """A BFF whose engine calls fail at once and are retried only a minute later."""
    return msgspec.structs.replace(
        settings,
        camunda_rest_url="http://127.0.0.1:9",
        completion_retry_initial_seconds=120.0,
        completion_retry_max_seconds=120.0,
    )


async def forms_done_until_signing(client: AsyncTestClient[Any]) -> dict[str, Any]:
    """Send the participant's three forms (with the proof of income), then wait for the
    signing task the process opens next; return it."""
    tasks = await open_tasks(client, 3)
    income = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_INCOME)
    uploaded = await upload_document(client, income["id"], "incomeProof")
    assert uploaded.status_code == 201, uploaded.text
    for task in tasks:
        sent = await complete(client, task)
        assert sent.status_code == 202, sent.text

    async def signing() -> dict[str, Any] | None:
        listed = (await client.get("/api/participant/tasks")).json()
        return next(
            (
                t
                for t in listed
                if t["elementId"] == credit.ELEMENT_TASK_SIGN and t["state"] == "open"
            ),
            None,
        )

    found: dict[str, Any] = await eventually(signing, within=60)
    return found
