"""Driving the staff dashboard as bank employees do: signed in through the real Keycloak,
with a case brought to the analyst's review by its participant through the panel."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.db.models import PanelTask, TaskState
from panel_core.settings import Settings
from tests import credit
from tests.helpers import (
    eventually,
    forms_done_until_signing,
    open_case_via_channel,
    person,
    sign_in,
    sign_task,
)
from tests.keycloak_login import DEMO_PASSWORD, browser, follow_to_redirect_uri, submit_login


@dataclass
class StaffBrowser:
    """One person's browser: the dashboard's cookies and the identity provider's."""

    client: AsyncTestClient[Litestar]
    settings: Settings
    provider: httpx.Client = field(default_factory=browser)

    async def sign_in(self, username: str, next_path: str = "/") -> httpx.Response:
        started = await self.client.get(f"/login?next={next_path}", follow_redirects=False)
        assert started.status_code == 303, started.text
        login_page = self.provider.get(started.headers["location"])
        assert login_page.status_code == 200, (
            login_page.status_code,
            login_page.headers.get("location"),
            login_page.text[:500],
        )
        after = submit_login(self.provider, login_page, username, DEMO_PASSWORD)
        callback = f"{self.settings.staff_public_base_url}/auth/callback"
        redirect = follow_to_redirect_uri(self.provider, after, callback)
        location = urlsplit(redirect.headers["location"])
        back = await self.client.get(f"{location.path}?{location.query}", follow_redirects=False)
        assert back.status_code == 303, back.text
        return back

    def close(self) -> None:
        self.provider.close()

    async def page(self, path: str) -> httpx.Response:
        return await self.client.get(path, headers={"accept": "text/html"})

    async def post_form(self, path: str, data: dict[str, Any], page: str) -> httpx.Response:
        """Post a form as the page ``page`` carries it: with that page's CSRF token."""
        shown = await self.page(page)
        return await self.client.post(
            path,
            data={**data, "_csrf_token": csrf_field(shown.text)},
            headers={"accept": "text/html"},
            follow_redirects=False,
        )

    def csrf_headers(self) -> dict[str, str]:
        token = self.client.cookies.get("staff-csrftoken")
        assert token, "the CSRF cookie is set by any GET first"
        return {"x-csrftoken": token}


def csrf_field(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page's forms carry the CSRF token"
    return match.group(1)


@dataclass(frozen=True)
class CaseInReview:
    case_id: uuid.UUID
    case_number: str
    participant: dict[str, str]
    participant_id: str
    analyst_task_id: uuid.UUID
    user_task_key: int


async def case_in_review(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    locale: str = "pl",
) -> CaseInReview:
    """A credit case whose one participant did everything, waiting for the analyst."""
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0, locale)
    opened = await open_case_via_channel(settings, [borrower])
    participant_id = opened["participants"][0]["participantId"]
    # A panel of its own: an application's lifespan closes its clients when a test client
    # leaves it.
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, participant_id)
        signing = await forms_done_until_signing(client)
        signed = await sign_task(client, signing["id"], borrower["phone"], settings.redis_url)
        assert signed.status_code == 202, signed.text

    async def analyst_task() -> PanelTask | None:
        async with sessions() as session:
            return await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == uuid.UUID(opened["caseId"]),
                    PanelTask.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW,
                    PanelTask.state == TaskState.OPEN,
                )
            )

    task = await eventually(analyst_task, within=60)
    return CaseInReview(
        case_id=uuid.UUID(opened["caseId"]),
        case_number=opened["caseNumber"],
        participant=borrower,
        participant_id=participant_id,
        analyst_task_id=task.id,
        user_task_key=task.user_task_key,
    )
