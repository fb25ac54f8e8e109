"""The second shipped case type, an account for a child: a shape unlike the credit one.

Two guardians and a child of 13 or more; the model routes each to their own task by role,
guardians send the birth certificate, a branch adviser (a Keycloak group of its own) checks
it and refuses with a note the guardians read, and every participant is told by SMS.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core.db.models import Case, ConsentRecord, Document, PanelTask
from panel_core.settings import Settings
from staff.app import create_app as create_staff_app
from tests.helpers import csrf_headers, eventually, person, sign_in, upload_document
from tests.sms_inbox import message_naming
from tests.staff_helpers import StaffBrowser

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

REFUSAL = "Akt urodzenia jest nieczytelny; prosimy o nowy skan."


async def participant_does_their_part(settings: Settings, participant_id: str, role: str) -> str:
    """Sign in, do the one task the model gave this role, and return the tasks page."""
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, participant_id)

        async def task() -> dict[str, Any] | None:
            listed = (await client.get("/api/participant/tasks")).json()
            return next((t for t in listed if t["state"] == "open"), None)

        found = await eventually(task, within=60)
        page = (await client.get("/tasks/")).text
        if role == "guardian":
            assert found["elementId"] == "task-guardian"
            uploaded = await upload_document(
                client, found["id"], "birthCertificate", "akt-urodzenia.pdf"
            )
            assert uploaded.status_code == 201, uploaded.text
            answers: dict[str, Any] = {"relationship": "mother", "consentOpenAccount": True}
        else:
            assert found["elementId"] == "task-minor"
            answers = {"consentMinor": True}
        sent = await client.post(
            f"/api/participant/tasks/{found['id']}/completion",
            json={"variables": answers},
            headers=csrf_headers(client),
        )
        assert sent.status_code == 202, sent.text
        return page


async def case_of(sessions: async_sessionmaker[AsyncSession], case_id: str) -> Case:
    async with sessions() as session:
        case = await session.get(Case, uuid.UUID(case_id))
        assert case is not None
        return case


async def test_guardians_and_a_child_take_part_and_an_adviser_refuses_with_a_note(
    settings: Settings, staff_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    people = [person("guardian", 0), person("guardian", 1, locale="en"), person("minor", 2)]
    async with AsyncTestClient(create_app(settings)) as channel:
        response = await channel.post(
            "/api/channel/cases",
            json={"caseType": "minor-account", "channel": "branch", "participants": people},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["caseNumber"].startswith("KD-"), case["caseNumber"]
    # The case type's own invitation, in each person's language.
    polish = await message_naming(settings.redis_url, people[0]["phone"], "Zakladamy konto")
    assert case["caseNumber"] in polish and "/login?" in polish
    english = await message_naming(settings.redis_url, people[1]["phone"], "We are opening")
    assert case["caseNumber"] in english
    assert (await case_of(sessions, case["caseId"])).status == "gathering"

    pages = [
        await participant_does_their_part(settings, p["participantId"], p["role"])
        for p in case["participants"]
    ]
    assert "Potwierdź, że jesteś opiekunem" in pages[0]
    assert "Zgódź się na swoje konto" in pages[2]
    async with sessions() as session:
        documents = (
            await session.scalars(
                select(Document).where(Document.case_id == uuid.UUID(case["caseId"]))
            )
        ).all()
        consents = (
            await session.scalars(
                select(ConsentRecord.consent_key).where(
                    ConsentRecord.participant_id.in_(
                        [uuid.UUID(p["participantId"]) for p in case["participants"]]
                    )
                )
            )
        ).all()
    assert sorted(d.field_key for d in documents) == ["birthCertificate", "birthCertificate"]
    assert sorted(consents) == ["consentMinor", "consentOpenAccount", "consentOpenAccount"]

    async def verification() -> PanelTask | None:
        async with sessions() as session:
            return await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == uuid.UUID(case["caseId"]),
                    PanelTask.element_id == "task-verify",
                )
            )

    task = await eventually(verification, within=60)
    assert task.candidate_groups == ["branch-advisers"]
    assert (await case_of(sessions, case["caseId"])).status == "in-verification"
    # While the case runs, instructions and questions of one role reach that role only.
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        running = (await client.get("/case/")).text
    assert "Przygotuj skan" in running and "Czy dziecko musi brać udział?" in running
    assert "Co będę mógł robić na koncie?" not in running
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, case["participants"][2]["participantId"])
        minor = (await client.get("/case/")).text
    assert "Co będę mógł robić na koncie?" in minor
    assert "Przygotuj skan" not in minor and "Czy dziecko musi brać udział?" not in minor

    async with AsyncTestClient(create_staff_app(staff_settings)) as client:
        adviser = StaffBrowser(client, staff_settings)
        try:
            await adviser.sign_in("bartosz.doradca")
            # The inbox offers the branch advisers' task; the case page names the case type.
            assert "Sprawdź dokumenty" in (await adviser.page("/?tab=unassigned")).text
            case_page = (await adviser.page(f"/cases/{case['caseId']}")).text
            assert "Konto dla dziecka" in case_page and "Opiekun 2" in case_page
            claimed = await client.post(
                f"/api/tasks/{task.id}/assignment", headers=adviser.csrf_headers()
            )
            assert claimed.status_code == 200, claimed.text
            done = await client.post(
                f"/api/tasks/{task.id}/completion",
                json={"answers": {"verification": "refuse", "verificationNote": REFUSAL}},
                headers=adviser.csrf_headers(),
            )
            assert done.status_code == 200, done.text
        finally:
            adviser.close()

    async def refused() -> Case | None:
        row = await case_of(sessions, case["caseId"])
        return row if row.status == "refused" else None

    ended = await eventually(refused, within=60)
    assert ended.status_reason == REFUSAL
    for who, text in zip(
        people,
        (
            "Nie mozemy otworzyc konta dla dziecka.",
            "We cannot open the child's account.",
            "Nie mozemy otworzyc konta dla dziecka.",
        ),
        strict=True,
    ):
        assert text in await message_naming(settings.redis_url, who["phone"], text)
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        overview = (await client.get("/case/")).text
    assert "Konto nieotwarte" in overview and REFUSAL in overview
    # A refusal leaves the guardians the status and the decision for 14 days, nothing more.
    assert "Ta sprawa jest zakończona." in overview
    assert "Widać tylko jej status i decyzję." in overview
    assert "Przygotuj skan" not in overview and "Czy dziecko musi brać udział?" not in overview
