"""A case whose participants the staff contact: both with a phone and an e-mail address,
invited by the process; and the invitation link's sign-in, as a participant's browser does it."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import httpx
from litestar.testing import AsyncTestClient

from bff.app import create_app as panel_app
from panel_core.settings import Settings
from tests import credit
from tests.helpers import csrf_token, open_case_via_channel, person
from tests.sms_inbox import next_message


@dataclass(frozen=True)
class ContactCase:
    case_id: uuid.UUID
    case_number: str
    # The primary borrower (Polish) and a co-borrower (English), each with phone and e-mail.
    borrower: dict[str, str]
    co_borrower: dict[str, str]
    borrower_id: str
    co_borrower_id: str

    def path(self, participant_id: str = "", action: str = "") -> str:
        if not participant_id:
            return f"/cases/{self.case_id}"
        return f"/cases/{self.case_id}/participants/{participant_id}/{action}"


def with_email(role: str, index: int, locale: str) -> dict[str, str]:
    return {**person(role, index, locale), "email": f"{role}.{secrets.token_hex(4)}@example.com"}


async def contact_case(settings: Settings) -> ContactCase:
    """A credit case whose two participants have been invited (their first SMS arrived)."""
    borrower = with_email(credit.ROLE_PRIMARY_BORROWER, 0, "pl")
    co_borrower = with_email(credit.ROLE_CO_BORROWER, 1, "en")
    opened = await open_case_via_channel(settings, [borrower, co_borrower])
    ids = {p["role"]: p["participantId"] for p in opened["participants"]}
    for who in (borrower, co_borrower):
        await next_message(settings.redis_url, who["phone"], 0, within=60)
    return ContactCase(
        case_id=uuid.UUID(opened["caseId"]),
        case_number=opened["caseNumber"],
        borrower=borrower,
        co_borrower=co_borrower,
        borrower_id=ids[credit.ROLE_PRIMARY_BORROWER],
        co_borrower_id=ids[credit.ROLE_CO_BORROWER],
    )


async def invitation_login(
    settings: Settings, case_number: str, fragment: str, code: str
) -> httpx.Response:
    """The invitation link's sign-in, in a browser of its own."""
    async with AsyncTestClient(panel_app(settings)) as client:
        await client.get("/login")
        return await client.post(
            "/login",
            data={
                "case": case_number,
                "fragment": fragment,
                "code": code,
                "_csrf_token": csrf_token(client),
            },
            follow_redirects=False,
        )


def signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers.get("location") == "/case/"
