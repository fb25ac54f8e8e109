"""Every participant route is scoped to the session's participant and case on the server.

For each route: the participant's own ids succeed; another participant's ids in the same case,
ids from another case and ids that do not exist all give the same 404, byte for byte.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.db.models import PanelTask, TaskState
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    csrf_headers,
    csrf_token,
    eventually,
    open_case_via_channel,
    person,
    sign_in,
)

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

CONSENTS = {"consentCreditCheck": True, "consentDataProcessing": True}


async def _case(stack: Stack, co_borrowers: int) -> dict[str, Any]:
    people = [person(credit.ROLE_PRIMARY_BORROWER, 0)] + [
        person(credit.ROLE_CO_BORROWER, i + 1) for i in range(co_borrowers)
    ]
    return await open_case_via_channel(stack.settings, people)


async def _consents_task(
    sessions: async_sessionmaker[AsyncSession], participant_id: str
) -> PanelTask:
    async def probe() -> PanelTask | None:
        async with sessions() as session:
            result: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.participant_id == uuid.UUID(participant_id),
                    PanelTask.element_id == credit.ELEMENT_TASK_CONSENTS,
                    PanelTask.state == TaskState.OPEN,
                )
            )
            return result

    return await eventually(probe, within=60)


ROUTES = [
    ("GET", "/api/participant/tasks/{id}", None),
    ("POST", "/api/participant/tasks/{id}/completion", "json"),
    ("GET", "/tasks/{id}", None),
    ("POST", "/tasks/{id}", "form"),
]


async def _call(
    client: AsyncTestClient[Any], method: str, route: str, body: str | None, task_id: str
) -> Any:
    url = route.format(id=task_id)
    headers = {"accept": "text/html"} if route.startswith("/tasks") else {}
    if method == "GET":
        return await client.get(url, headers=headers)
    if body == "json":
        return await client.post(
            url, json={"variables": CONSENTS}, headers={**headers, **csrf_headers(client)}
        )
    return await client.post(
        url,
        data={
            "consentCreditCheck": "true",
            "consentDataProcessing": "true",
            "_csrf_token": csrf_token(client),
        },
        headers=headers,
        follow_redirects=False,
    )


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
async def test_only_the_participants_own_ids_are_served(
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    method: str,
    route: str,
    body: str | None,
) -> None:
    first_case = await _case(stack, co_borrowers=1)
    other_case = await _case(stack, co_borrowers=0)
    me, neighbour = first_case["participants"]
    stranger = other_case["participants"][0]
    own = await _consents_task(sessions, me["participantId"])
    same_case = await _consents_task(sessions, neighbour["participantId"])
    other = await _consents_task(sessions, stranger["participantId"])

    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, me["participantId"])
        foreign = [
            await _call(client, method, route, body, str(task_id))
            for task_id in (same_case.id, other.id, uuid.uuid4())
        ]
        for response in foreign:
            assert response.status_code == 404, response.text
        assert foreign[0].content == foreign[1].content == foreign[2].content
        mine = await _call(client, method, route, body, str(own.id))
        assert mine.status_code in {200, 202, 303}, mine.text

    # Nothing happened to the other participants' tasks.
    async with sessions() as session:
        for task in (same_case, other):
            fresh = await session.get(PanelTask, task.id)
            assert fresh is not None and fresh.state == TaskState.OPEN
