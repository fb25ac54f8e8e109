"""Service tasks that record the business status of a case."""

import logging
import uuid

from pyzeebe import Job, ZeebeTaskRouter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.branding import bank_sms
from panel_core.cases.service import Binding, CaseValidationError, bind_instance, set_case_status
from panel_core.notifications.live import STATUS_CHANGED, publish_case_update
from panel_core.settings import get_settings
from workers.routers.errors import on_job_error

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The BPMN model is configured wrongly; the job fails and raises an incident."""


def _reason(value: object) -> str | None:
    """The reason as text; a model may map a number or a structure into it by mistake."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.strip() or None


def build_router(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    max_running_jobs: int,
    *,
    public_base_url: str | None = None,
    branding_file: str | None = None,
) -> ZeebeTaskRouter:
    router = ZeebeTaskRouter(exception_handler=on_job_error)
    # The decision SMS links to the panel. The worker process's settings are the cached
    # ones when its entry point does not pass the address. It is in the bank's wording where
    # the branding file has one.
    base_url = public_base_url or get_settings().public_base_url
    bank_texts = bank_sms(branding_file or "")

    # The signature is the input contract: pyzeebe fetches only ``caseId`` and
    # ``statusReason``. A variable the job does not carry is left out of the call, so the
    # default stands for "no reason" (as does a mapping that evaluates to null).
    @router.task(task_type=c.JOB_SET_CASE_STATUS, max_running_jobs=max_running_jobs)  # type: ignore[arg-type]
    async def set_status(caseId: str, job: Job, statusReason: str | None = None) -> dict[str, str]:
        status = job.custom_headers.get(c.HEADER_STATUS, "")
        if not status:
            raise ModelError(
                f"Task header {c.HEADER_STATUS!r} is missing on element {job.element_id!r}."
            )
        try:
            case_id = uuid.UUID(caseId)
        except ValueError as exc:
            raise ModelError(f"Process variable {c.VAR_CASE_ID!r} is not a case id.") from exc
        # Setting the same status twice is harmless (the decision SMS is keyed per person and
        # case), so a redelivered job needs no guard.
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
            try:
                await set_case_status(
                    session,
                    case_id,
                    status,
                    _reason(statusReason),
                    base_url=base_url,
                    bank_texts=bank_texts,
                )
            except CaseValidationError as exc:
                # A status the case type's descriptor does not define (deploy refuses such a
                # model; this catches one deployed around it): an incident naming the element.
                raise ModelError(f"Element {job.element_id!r}: {exc}") from exc
            await session.commit()
        await publish_case_update(redis, case_id, STATUS_CHANGED)
        return {}

    return router
