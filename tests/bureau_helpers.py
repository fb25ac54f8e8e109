"""A credit case brought to its credit bureau check, with the session's bureau stub answering
that case as a test chooses (the stub's mode per case), and what the engine made of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from devtools.bureau_stub import BureauStub
from panel_core.db.models import Case, EngineIncident, IncidentState, PanelTask, TaskState
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


@dataclass(frozen=True)
class CaseAtBureau:
    case_id: uuid.UUID
    case_number: str
    participant_id: str


async def case_at_the_bureau(
    settings: Settings, bureau: BureauStub, mode: str | None, *, locale: str = "pl"
) -> CaseAtBureau:
    """A credit case whose one participant did everything; the bureau answers it in ``mode``
    (None: as the stub answers every case)."""
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0, locale)
    opened = await open_case_via_channel(settings, [borrower])
    if mode is not None:
        bureau.set_mode(mode, reference=opened["caseId"])
    participant_id = opened["participants"][0]["participantId"]
    async with AsyncTestClient(create_app(settings)) as client:
        await sign_in(client, participant_id)
        signing = await forms_done_until_signing(client)
        signed = await sign_task(client, signing["id"], borrower["phone"], settings.redis_url)
        assert signed.status_code == 202, signed.text
    return CaseAtBureau(uuid.UUID(opened["caseId"]), opened["caseNumber"], participant_id)


async def open_incident(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID, *, within: float = 90
) -> EngineIncident:
    """The case's open incident at the bureau check, once the engine has raised it."""

    async def probe() -> EngineIncident | None:
        async with sessions() as session:
            case = await session.get(Case, case_id)
            if case is None or case.process_instance_key is None:
                return None
            return await session.scalar(
                select(EngineIncident).where(
                    EngineIncident.root_process_instance_key == case.process_instance_key,
                    EngineIncident.element_id == credit.ELEMENT_CHECK_BUREAU,
                    EngineIncident.state == IncidentState.ACTIVE,
                )
            )

    return await eventually(probe, within=within)


async def incident_state(
    sessions: async_sessionmaker[AsyncSession], incident_key: int
) -> IncidentState | None:
    async with sessions() as session:
        row = await session.get(EngineIncident, incident_key)
        return row.state if row is not None else None


async def analyst_task(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID, *, within: float = 60
) -> PanelTask:
    """The analyst's review of the case, once the process has reached it."""

    async def probe() -> PanelTask | None:
        async with sessions() as session:
            return await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == case_id,
                    PanelTask.element_id == credit.ELEMENT_TASK_ANALYST_REVIEW,
                    PanelTask.state == TaskState.OPEN,
                )
            )

    return await eventually(probe, within=within)
