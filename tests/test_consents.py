"""Consents are recorded with the exact text shown, its SHA-256, the time and the participant."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.db.models import ConsentRecord, PanelTask
from panel_core.forms import localise, text_html
from panel_core.tasks.consents import consent_texts
from tests import credit
from tests.conftest import REPO_ROOT, Stack
from tests.helpers import eventually, form_token, open_case_via_channel, person, sign_in

FORM = REPO_ROOT / "bpmn" / "credit-application" / "forms" / f"{credit.FORM_CONSENTS}.form"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(Path(FORM).read_text())
    return schema


def test_each_consent_text_is_the_forms_explanation_and_the_consents_own_words() -> None:
    texts = consent_texts(_schema())
    assert set(texts) == {"consentCreditCheck", "consentDataProcessing"}
    assert texts["consentCreditCheck"].startswith("### Twoje zgody")
    assert texts["consentCreditCheck"].endswith("w biurze informacji kredytowej")
    assert texts["consentCreditCheck"] != texts["consentDataProcessing"]
    # In English the participant reads, and gives, the English text.
    english = consent_texts(localise(_schema(), "en"))
    assert english["consentCreditCheck"].startswith("### Your consents")
    assert english["consentCreditCheck"].endswith("I consent to a credit bureau check")


def test_form_text_is_rendered_escaped() -> None:
    rendered = text_html("### Title\n\nA <script>alert(1)</script> & more")
    assert rendered == "<h2>Title</h2><p>A &lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>"


@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_giving_consents_records_the_text_and_its_hash(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    participant = case["participants"][0]["participantId"]

    async def consents_task() -> PanelTask | None:
        async with sessions() as session:
            task: PanelTask | None = await session.scalar(
                select(PanelTask).where(
                    PanelTask.participant_id == uuid.UUID(participant),
                    PanelTask.element_id == credit.ELEMENT_TASK_CONSENTS,
                )
            )
            return task

    task = await eventually(consents_task, within=60)
    texts = consent_texts(_schema())
    async with AsyncTestClient(create_app(stack.settings)) as client:
        await sign_in(client, participant)
        page = await client.get(f"/tasks/{task.id}")
        assert "<h2>Twoje zgody</h2>" in page.text
        version = hashlib.sha256(texts["consentCreditCheck"].encode()).hexdigest()
        assert f"Wersja treści zgody {version[:12]}" in page.text
        sent = await client.post(
            f"/tasks/{task.id}",
            data={
                "consentCreditCheck": "true",
                "consentDataProcessing": "true",
                "_csrf_token": form_token(page.text),
            },
            follow_redirects=False,
        )
        assert sent.status_code == 303
    async with sessions() as session:
        records = (
            await session.scalars(
                select(ConsentRecord).where(ConsentRecord.panel_task_id == task.id)
            )
        ).all()
    assert {r.consent_key for r in records} == set(texts)
    for record in records:
        assert record.participant_id == uuid.UUID(participant)
        assert record.text == texts[record.consent_key]
        assert record.text_sha256 == hashlib.sha256(record.text.encode()).hexdigest()
        assert record.form_key == task.form_key and record.given_at is not None
