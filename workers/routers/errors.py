"""How a job that failed is answered: an outage never burns the job's retries.

pyzeebe's default handler fails the job with one retry fewer, so an outage of PostgreSQL
longer than a few retries would raise incidents on every running case. Here:

* an outage (``is_transient``): the job is left alone. Zeebe offers it again when its
  activation times out, with its retries intact; the outage is waited out at no cost;
* ``BusinessError``: the BPMN error the model catches;
* anything else (a model error, a defect): the job fails with its message and one retry
  fewer, and becomes an incident an operator sees when its retries are used up.
"""

from __future__ import annotations

import logging

from pyzeebe import Job, JobController
from pyzeebe.errors import BusinessError

from panel_core.resilience import is_transient

log = logging.getLogger(__name__)


async def on_job_error(error: Exception, job: Job, controller: JobController) -> None:
    if is_transient(error):
        log.warning(
            "job %s (%s) waits for a service to come back; offered again after its timeout: %s",
            job.key,
            job.type,
            error,
        )
        return
    if isinstance(error, BusinessError):
        await controller.set_error_status(str(error), error_code=error.error_code)
        return
    log.error("job %s (%s) failed: %s", job.key, job.type, error, exc_info=error)
    await controller.set_failure_status(f"{type(error).__name__}: {error}")
