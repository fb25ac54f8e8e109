"""Service tasks that record the business status of a case."""

import logging
import uuid

from pyzeebe import Job, ZeebeTaskRouter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.cases import Binding, bind_instance, set_case_status
from panel_core.live import STATUS_CHANGED, publish_case_update
from workers.routers.errors import on_job_error

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The BPMN model is configured wrongly; the job fails and raises an incident."""


def build_router(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, max_running_jobs: int
) -> ZeebeTaskRouter:
    router = ZeebeTaskRouter(exception_handler=on_job_error)

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
            binding = await bind_instance(
                session, case_id, job.process_instance_key, job.bpmn_process_id
            )
            if binding is Binding.UNKNOWN_CASE:
                raise ModelError(f"Case {case_id} of job {job.key} is not registered in the panel.")
            if binding is Binding.DUPLICATE:
                # A second instance of the case, being cancelled: it must not move the case.
                await session.commit()
                return {}
            await set_case_status(session, case_id, status)
            await session.commit()
        await publish_case_update(redis, case_id, STATUS_CHANGED)
        return {}

    return router
