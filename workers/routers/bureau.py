"""The credit bureau check: a real HTTP call that can fail, answered the way its failure
deserves.

* The bureau knows every participant: the job completes with ``bureauResult``.
* The bureau does not know one of them (or one has no PESEL index to ask with): the BPMN error
  ``bureau-applicant-not-found``, which the model catches; the analyst reviews the case with
  the flag.
* No answer in time, no connection, an HTTP error, a malformed answer: the job fails with one
  retry fewer and a backoff (``retryBackoff``), so the engine offers it again later; once the
  task's ``retries`` are used up the engine raises an incident an operator retries from the
  dashboard.
* Anything else (an outage of the panel's database, a model error) as every router does.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pyzeebe import Job, JobController, ZeebeTaskRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.bureau import BureauFaultError, BureauNotFoundError, check_subjects
from panel_core.cases.service import Binding, bind_instance
from panel_core.db.models import Participant
from panel_core.resilience import jittered
from panel_core.settings import Settings
from workers.routers.errors import on_job_error

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The job's variables do not name a case of the panel; the job fails visibly."""


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Fail the job: one retry fewer, offered again after ``retry_back_off_ms``."""

    message: str
    retry_back_off_ms: int


@dataclass(frozen=True, slots=True)
class BpmnError:
    """Throw the BPMN error the model catches."""

    error_code: str
    message: str


def bureau_outcome(error: Exception, backoff_seconds: float) -> JobFailure | BpmnError | None:
    """What a failed bureau call does to its job; None for errors that are not the bureau's
    (the common handler decides those)."""
    if isinstance(error, BureauFaultError):
        return JobFailure(str(error), max(0, round(jittered(backoff_seconds) * 1000)))
    if isinstance(error, BureauNotFoundError):
        return BpmnError(c.ERROR_BUREAU_NOT_FOUND, str(error))
    return None


def error_handler(backoff_seconds: float) -> Any:
    async def on_bureau_error(error: Exception, job: Job, controller: JobController) -> None:
        # Before the common handler: a fault wraps httpx's errors, whose causes are the
        # OSErrors an outage is told by, and an outage never burns retries; the bureau's
        # must, or a bureau that is down would never surface as an incident.
        outcome = bureau_outcome(error, backoff_seconds)
        if isinstance(outcome, JobFailure):
            log.warning(
                "job %s (%s): %s; %s retries left, next in %s ms",
                job.key,
                job.type,
                outcome.message,
                job.retries - 1,
                outcome.retry_back_off_ms,
            )
            await controller.set_failure_status(
                outcome.message, retry_back_off_ms=outcome.retry_back_off_ms
            )
            return
        if isinstance(outcome, BpmnError):
            await controller.set_error_status(outcome.message, error_code=outcome.error_code)
            return
        await on_job_error(error, job, controller)

    return on_bureau_error


async def _subjects(session: AsyncSession, case_id: uuid.UUID) -> tuple[list[str], int]:
    """The participants' PESEL blind indexes, and how many participants have none."""
    indexes = list(
        await session.scalars(
            select(Participant.pesel_index)
            .where(Participant.case_id == case_id)
            .order_by(Participant.ordinal)
        )
    )
    known = [index for index in indexes if index]
    return known, len(indexes) - len(known)


def build_router(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    max_running_jobs: int,
) -> ZeebeTaskRouter:
    router = ZeebeTaskRouter(exception_handler=error_handler(settings.bureau_retry_backoff_seconds))
    # Zeebe takes the job back if the handler has not answered by then; the call itself is
    # bounded by the bureau's timeout, well inside it.
    job_timeout_ms = round((settings.bureau_timeout_seconds + 30) * 1000)

    # The signature is the input contract: pyzeebe fetches only ``caseId``, and passes the
    # job to the parameter annotated ``Job`` (a real annotation: this module has no
    # ``from __future__ import annotations``, under which pyzeebe would not see it).
    @router.task(  # type: ignore[arg-type]
        task_type=c.JOB_CHECK_CREDIT_BUREAU,
        max_running_jobs=max_running_jobs,
        timeout_ms=job_timeout_ms,
    )
    async def check_bureau(caseId: str, job: Job) -> dict[str, Any]:
        try:
            case_id = uuid.UUID(caseId)
        except ValueError as exc:
            raise ModelError(f"Process variable {c.VAR_CASE_ID!r} is not a case id.") from exc
        async with sessions() as session:
            binding = await bind_instance(
                session, case_id, job.process_instance_key, job.bpmn_process_id
            )
            if binding is Binding.UNKNOWN_CASE:
                raise ModelError(f"Case {case_id} of job {job.key} is not registered in the panel.")
            subjects, unindexed = await _subjects(session, case_id)
            await session.commit()
        if binding is Binding.DUPLICATE:
            # A second instance of the case, being cancelled: it asks nobody anything.
            return {}
        if unindexed or not subjects:
            # Registered before PESEL blind indexes existed: the bureau cannot be asked about
            # them, which the analyst must know as much as "not found".
            raise BureauNotFoundError(unindexed, unindexed + len(subjects))
        # Asking twice (a redelivered job) costs one more query at the bureau and changes
        # nothing here: the result only becomes a variable.
        result = await check_subjects(
            http,
            settings.bureau_url,
            reference=str(case_id),
            subjects=subjects,
            timeout_seconds=settings.bureau_timeout_seconds,
        )
        return {c.VAR_BUREAU_RESULT: result.as_variable()}

    return router
