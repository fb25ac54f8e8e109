"""A process designer's case type runs end to end with no Python of its own.

``tests/case_types/child-card`` was written from the modelling guide alone: its own roles
(one or two guardians, a minor), channel, statuses and texts. Deployed as an operator does it,
it deploys only itself, opens through the channels' API, numbers people within their role,
finishes with its own decision SMS, and keeps a running case on the descriptor version it
opened with when a new one is deployed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.cli import deploy
from panel_core.db.models import Case
from panel_core.settings import Settings
from tests.helpers import csrf_headers, eventually, person, sign_in
from tests.sms_inbox import message_naming

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

FOLDER = Path(__file__).resolve().parent / "case_types" / "child-card"
AUTH = {"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"}


async def open_card(settings: Settings, people: list[dict[str, str]]) -> dict[str, Any]:
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.post(
            "/api/channel/cases",
            json={"caseType": "child-card", "channel": "branch", "participants": people},
            headers=AUTH,
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def case_row(sessions: async_sessionmaker[AsyncSession], case_id: str) -> Case:
    async with sessions() as session:
        case = await session.scalar(select(Case).where(Case.id == uuid.UUID(case_id)))
        assert case is not None
        return case


async def confirm(settings: Settings, participant_id: str) -> str:
    """The participant signs in, does their one task, and returns their overview's text."""
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, participant_id)

        async def task() -> dict[str, Any] | None:
            listed = (await client.get("/api/participant/tasks")).json()
            return next((t for t in listed if t["state"] == "open"), None)

        found = await eventually(task, within=60)
        assert found["elementId"] == "task-confirm"
        # The page names the task as the descriptor does.
        assert "Potwierdź swoją rolę" in (await client.get("/tasks/")).text
        sent = await client.post(
            f"/api/participant/tasks/{found['id']}/completion",
            json={"variables": {"relationship": "matka"}},
            headers=csrf_headers(client),
        )
        assert sent.status_code == 202, sent.text
        page = await client.get("/case/")
        assert page.status_code == 200
        return page.text


async def test_a_designers_case_type_deploys_alone_and_runs_to_its_own_decision(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    folder = tmp_path / "child-card"
    shutil.copytree(FOLDER, folder)
    [deployed] = await deploy(settings, [folder])
    # Only this case type: the credit process gets no new version from it.
    assert [pid for pid, _ in deployed.processes] == ["child-card"]
    assert [fid for fid, _ in deployed.forms] == ["child-card-confirm"]
    [(case_type, first_version, _)] = deployed.descriptors
    assert case_type == "child-card"
    again = await deploy(settings, [folder])
    assert again[0].descriptors == [("child-card", first_version, False)]
    assert "descriptor child-card version" in again[0].lines()[-1]

    guardians = [person("guardian", 0), person("guardian", 1, locale="en")]
    early = await open_card(settings, guardians)
    opened = await case_row(sessions, early["caseId"])
    assert opened.status == "gathering" and opened.descriptor_version == first_version
    assert [p["role"] for p in early["participants"]] == ["guardian", "guardian"]

    # A new descriptor version: the running case keeps the texts it opened with.
    document = json.loads((folder / "child-card.case.json").read_text())
    document["statuses"]["gathering"]["next"]["pl"] = "Nowy tekst dla nowych spraw."
    (folder / "child-card.case.json").write_text(json.dumps(document, ensure_ascii=False))
    [redeployed] = await deploy(settings, [folder])
    assert redeployed.descriptors == [("child-card", first_version + 1, True)]
    later = await open_card(settings, [person("guardian", 2), person("minor", 3)])
    assert (await case_row(sessions, later["caseId"])).descriptor_version == first_version + 1

    first_id, second_id = (p["participantId"] for p in early["participants"])
    first_page = await confirm(settings, first_id)
    assert "Każdy opiekun potwierdza swoją rolę." in first_page
    assert "Nowy tekst" not in first_page
    second_page = await confirm(settings, second_id)
    # The others are named by role, numbered within it from 1.
    assert "Opiekun 1" in second_page

    async def finished() -> str | None:
        status = (await case_row(sessions, early["caseId"])).status
        return status if status == "opened" else None

    assert await eventually(finished, within=60) == "opened"
    for guardian, text in zip(
        guardians,
        ("Karta dla dziecka jest wydana.", "The card for the child is issued."),
        strict=True,
    ):
        assert text in await message_naming(settings.redis_url, guardian["phone"], text)


async def test_opening_refuses_what_the_descriptor_does_not_allow(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "child-card"
    shutil.copytree(FOLDER, folder)
    await deploy(settings, [folder])
    async with AsyncTestClient(create_app(settings)) as client:
        for body, message in (
            (
                {"caseType": "child-card", "channel": "branch",
                 "participants": [person("minor", 0)]},
                "takes 1 to 2 guardian, not 0",
            ),
            (
                {"caseType": "child-card", "channel": "internet-banking",
                 "participants": [person("guardian", 0)]},
                "Unknown channel 'internet-banking' for child-card",
            ),
            (
                {"caseType": "child-card", "channel": "branch",
                 "participants": [person("co-borrower", 0)]},
                "Unknown role(s) for child-card: co-borrower",
            ),
            (
                {"caseType": "never-deployed", "channel": "branch",
                 "participants": [person("guardian", 0)]},
                "Unknown case type 'never-deployed'",
            ),
        ):  # fmt: skip
            response = await client.post("/api/channel/cases", json=body, headers=AUTH)
            assert response.status_code == 400, response.text
            assert message in response.text
