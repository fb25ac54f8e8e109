"""The invitation step: a participant's access and the SMS with the case link and a code."""

import logging
import uuid
from typing import Any

from pyzeebe import Job, ZeebeTaskRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.cases.service import Binding, bind_instance
from panel_core.identity.service import LoginService
from panel_core.notifications.invitations import InvitationError, invite_participant
from panel_core.settings import Settings
from workers.routers.errors import on_job_error

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The job's variables do not name a participant of the case; the job fails visibly."""


def build_router(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    login: LoginService,
    max_running_jobs: int,
) -> ZeebeTaskRouter:
    router = ZeebeTaskRouter(exception_handler=on_job_error)

    # The signature is the input contract: pyzeebe fetches only these two variables.
    @router.task(task_type=c.JOB_INVITE_PARTICIPANT, max_running_jobs=max_running_jobs)  # type: ignore[arg-type]
    async def invite(caseId: str, participant: dict[str, Any], job: Job) -> dict[str, Any]:
        try:
            participant_id = uuid.UUID(str(participant[c.KEY_PARTICIPANT_ID]))
            case_id = uuid.UUID(caseId)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"Job {job.key} needs variables {c.VAR_CASE_ID!r} and "
                f"{c.VAR_PARTICIPANT}.{c.KEY_PARTICIPANT_ID}."
            ) from exc
        async with sessions() as session:
            binding = await bind_instance(
                session, case_id, job.process_instance_key, job.bpmn_process_id
            )
            await session.commit()
        if binding is Binding.DUPLICATE:
            return {}
        try:
            sent = await invite_participant(
                settings, sessions, login, case_id=case_id, participant_id=participant_id
            )
        except InvitationError as exc:
            raise ModelError(str(exc)) from exc
        if not sent:
            log.info("participant %s already invited; job %s redelivered", participant_id, job.key)
        return {}

    return router
