"""A credit case waiting for its co-borrower, for the assisted-mode tests: their tasks are
open in the panel and they have not signed in yet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db.models import PanelTask, TaskState
from panel_core.settings import Settings
from tests import credit
from tests.helpers import eventually, open_case_via_channel, person
from tests.sms_inbox import messages_to


@dataclass(frozen=True)
class Waiting:
    """A credit case whose co-borrower has their tasks open and has not signed in."""

    case_id: uuid.UUID
    case_number: str
    co_borrower: dict[str, str]
    co_borrower_id: str
    tasks: dict[str, uuid.UUID]

    def assisted(self, element: str) -> str:
        return f"/cases/{self.case_id}/tasks/{self.tasks[element]}/assisted"

    @property
    def page(self) -> str:
        return f"/cases/{self.case_id}"


async def co_borrower_waiting(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Waiting:
    borrower = person(credit.ROLE_PRIMARY_BORROWER, 0)
    co_borrower = person(credit.ROLE_CO_BORROWER, 1)
    opened = await open_case_via_channel(settings, [borrower, co_borrower])
    case_id = uuid.UUID(opened["caseId"])
    theirs = next(p for p in opened["participants"] if p["role"] == credit.ROLE_CO_BORROWER)
    wanted = {credit.ELEMENT_TASK_QUESTIONNAIRE, credit.ELEMENT_TASK_CONSENTS}

    async def open_tasks() -> dict[str, uuid.UUID] | None:
        async with sessions() as session:
            rows = await session.scalars(
                select(PanelTask).where(
                    PanelTask.case_id == case_id,
                    PanelTask.participant_id == uuid.UUID(theirs["participantId"]),
                    PanelTask.state == TaskState.OPEN,
                )
            )
            found = {row.element_id: row.id for row in rows}
        return found if wanted <= set(found) else None

    tasks = await eventually(open_tasks, within=60)

    async def invited() -> bool:
        # The invitation comes first; the codes the tests read are the messages after it.
        return len(await messages_to(settings.redis_url, co_borrower["phone"])) >= 1

    await eventually(invited, within=30)
    return Waiting(case_id, opened["caseNumber"], co_borrower, theirs["participantId"], tasks)
