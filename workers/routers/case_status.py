"""Service tasks that record the business status of a case."""

import logging
import uuid

from pyzeebe import Job, ZeebeTaskRouter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.cases import set_case_status
from panel_core.live import STATUS_CHANGED, publish_case_update

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The BPMN model is configured wrongly; the job fails and raises an incident."""


def build_router(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, max_running_jobs: int
) -> ZeebeTaskRouter:
    router = ZeebeTaskRouter()

    # The signature is the input contract: pyzeebe fetches only ``caseId``.
    @router.task(task_type=c.JOB_SET_CASE_STATUS, max_running_jobs=max_running_jobs)  # type: ignore[arg-type]
    async def set_status(caseId: str, job: Job) -> dict[str, str]:
        status = job.custom_headers.get(c.HEADER_STATUS, "")
        if status not in c.CASE_STATUSES:
            raise ModelError(
                f"Task header {c.HEADER_STATUS!r} must be one of {', '.join(c.CASE_STATUSES)}; "
                f"element {job.element_id!r} has {status!r}."
            )
        try:
            case_id = uuid.UUID(caseId)
        except ValueError as exc:
            raise ModelError(f"Process variable {c.VAR_CASE_ID!r} is not a case id.") from exc
        # Setting the same status twice is harmless, so a redelivered job needs no guard.
        async with sessions() as session:
            found = await set_case_status(session, case_id, status)
            await session.commit()
        if not found:
            log.warning("case %s of job %s is not registered in the panel", case_id, job.key)
            return {}
        await publish_case_update(redis, case_id, STATUS_CHANGED)
        return {}

    return router
