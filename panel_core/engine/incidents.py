"""Failed automatic steps for the bank's operators: the open incidents grouped by what went
wrong, and their retry.

A retry is up to three requests to the engine, in this order, each only once the one before
succeeded:

1. fix variables (``PUT /v2/element-instances/{key}/variables``), only when some are given;
2. give the job retries (``PATCH /v2/jobs/{key}``), for incidents of jobs: Zeebe 8.6 refuses
   to resolve a job's incident while the job has none left;
3. resolve the incident (``POST /v2/incidents/{key}/resolution``).

Each step's outcome is kept, so the operator sees which one failed and that nothing after it
was sent. The steps are idempotent in effect, so retrying a retry that half failed is safe.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import Case, EngineIncident, IncidentState, ProcessDefinition
from panel_core.engine.jobs import retries_left
from panel_core.engine.rest import (
    CamundaRestClient,
    EngineConflictError,
    EngineNotFoundError,
    EngineRejectedError,
    EngineUnavailableError,
)
from panel_core.identity.actors import StaffActor

# The engine's incident type of a job out of retries: the one a retry gives retries to.
JOB_NO_RETRIES = "JOB_NO_RETRIES"
MAX_RETRIES = 10
MAX_REASON_LENGTH = 500
# The list shows at most this many open incidents, newest first.
LIST_LIMIT = 500
# A bulk retry takes at most this many incidents, each one a few requests to the engine.
BULK_LIMIT = 200


def may_operate(actor: StaffActor, operator_role: str) -> bool:
    """Operators and team managers see failed steps and retry them; nobody else."""
    return actor.manager or operator_role in actor.roles


def group_key(error_type: str, error_message: str) -> str:
    """A short stable name for "the same problem": its error type and message."""
    digest = hashlib.sha256(f"{error_type}\n{error_message}".encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident: EngineIncident
    # The panel's case the instance runs, if any (an instance started by hand has none).
    case_id: uuid.UUID | None
    case_number: str | None
    case_type: str | None
    # The element's name in its model, or its id where the model's record is not known.
    element_name: str
    # As the engine last reported them; None for incidents of no job, or a job whose
    # records have not been seen.
    retries_left: int | None

    @property
    def group(self) -> str:
        return group_key(self.incident.error_type, self.incident.error_message)


@dataclass(frozen=True, slots=True)
class IncidentGroup:
    key: str
    error_type: str
    error_message: str
    rows: list[IncidentRow]


async def _rows(session: AsyncSession, incidents: list[EngineIncident]) -> list[IncidentRow]:
    roots = {i.root_process_instance_key for i in incidents}
    cases = {
        case.process_instance_key: case
        for case in (
            await session.scalars(select(Case).where(Case.process_instance_key.in_(roots)))
            if roots
            else []
        )
    }
    definition_keys = {i.process_definition_key for i in incidents}
    names: dict[int, Mapping[str, Any]] = {
        key: element_names
        for key, element_names in (
            await session.execute(
                select(
                    ProcessDefinition.process_definition_key, ProcessDefinition.element_names
                ).where(ProcessDefinition.process_definition_key.in_(definition_keys))
            )
            if definition_keys
            else []
        )
    }
    retries = await retries_left(session, {i.job_key for i in incidents if i.job_key})
    rows = []
    for incident in incidents:
        case = cases.get(incident.root_process_instance_key)
        name = names.get(incident.process_definition_key, {}).get(incident.element_id)
        left = retries.get(incident.job_key) if incident.job_key else None
        if left is None and incident.job_key and incident.error_type == JOB_NO_RETRIES:
            # Its records not seen yet: a job out of retries has none, by definition.
            left = 0
        rows.append(
            IncidentRow(
                incident=incident,
                case_id=case.id if case else None,
                case_number=case.case_number if case else None,
                case_type=case.case_type if case else None,
                element_name=str(name) if name else incident.element_id,
                retries_left=left,
            )
        )
    return rows


async def open_incidents(session: AsyncSession, limit: int = LIST_LIMIT) -> list[IncidentRow]:
    """Open incidents, newest first."""
    incidents = list(
        await session.scalars(
            select(EngineIncident)
            .where(
                EngineIncident.state == IncidentState.ACTIVE,
                EngineIncident.created_at.is_not(None),
            )
            .order_by(EngineIncident.created_at.desc(), EngineIncident.incident_key.desc())
            .limit(limit)
        )
    )
    return await _rows(session, incidents)


async def incident_rows(session: AsyncSession, keys: Collection[int]) -> list[IncidentRow]:
    """These incidents, open or not, in the order of ``keys``; unknown keys are left out."""
    if not keys:
        return []
    found = {
        i.incident_key: i
        for i in await session.scalars(
            select(EngineIncident).where(EngineIncident.incident_key.in_(list(keys)))
        )
    }
    return await _rows(session, [found[k] for k in keys if k in found])


def grouped(rows: list[IncidentRow]) -> list[IncidentGroup]:
    """Rows by problem; the groups by size, then by their newest incident."""
    groups: dict[str, IncidentGroup] = {}
    for row in rows:
        group = groups.get(row.group)
        if group is None:
            group = groups[row.group] = IncidentGroup(
                row.group, row.incident.error_type, row.incident.error_message, []
            )
        group.rows.append(row)
    # Stable: among groups of one size, the order of the rows (newest first) stands.
    return sorted(groups.values(), key=lambda g: -len(g.rows))


class VariablesError(ValueError):
    """What the operator typed is not a JSON object of variables."""


def parse_variables(text: str) -> dict[str, Any] | None:
    """The variables to set, None when the field is left empty."""
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise VariablesError(f"line {getattr(exc, 'lineno', 1)}: {exc}") from exc
    if not isinstance(value, dict) or not value:
        raise VariablesError("not a JSON object with at least one variable")
    if any(not name.strip() for name in value):
        raise VariablesError("a variable has no name")
    return value


class Step(enum.StrEnum):
    VARIABLES = "variables"
    RETRIES = "retries"
    RESOLVE = "resolve"


class Outcome(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"
    # The step does not apply: no variables given, or an incident of no job.
    NOT_NEEDED = "not-needed"
    # An earlier step failed, so this one was never sent.
    NOT_TRIED = "not-tried"


class Failure(enum.StrEnum):
    """Why the engine did not do a step, for the operator to act on."""

    # Unreachable, busy, or timed out: the same retry may work shortly.
    UNAVAILABLE = "unavailable"
    # The engine has no such element instance, job or incident any more.
    NOT_FOUND = "not-found"
    # The job or incident is no longer in the state the operator saw.
    CONFLICT = "conflict"
    # The engine refused the request itself.
    REFUSED = "refused"
    # What the operator typed could not be sent at all.
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    outcome: Outcome
    failure: Failure | None = None
    # The engine's own words (English, technical), or what was wrong with the input.
    detail: str = ""


@dataclass(slots=True)
class RetryResult:
    incident_key: int
    steps: list[StepResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return all(s.outcome in (Outcome.DONE, Outcome.NOT_NEEDED) for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.outcome is Outcome.FAILED), None)

    def summary(self) -> dict[str, str]:
        """Each step's outcome, as the audit log keeps it."""
        return {
            s.step.value: s.outcome.value + (f": {s.failure.value}" if s.failure else "")
            for s in self.steps
        }


def _failure(exc: Exception) -> Failure:
    if isinstance(exc, EngineUnavailableError):
        return Failure.UNAVAILABLE
    if isinstance(exc, EngineNotFoundError):
        return Failure.NOT_FOUND
    if isinstance(exc, EngineConflictError):
        return Failure.CONFLICT
    return Failure.REFUSED


def refused_before_sending(detail: str, incident: EngineIncident) -> RetryResult:
    """The retry of input that cannot be sent: the first step fails, nothing reaches the
    engine."""
    result = RetryResult(incident.incident_key)
    result.steps.append(StepResult(Step.VARIABLES, Outcome.FAILED, Failure.INVALID, detail))
    result.steps.append(
        StepResult(Step.RETRIES, Outcome.NOT_TRIED if incident.job_key else Outcome.NOT_NEEDED)
    )
    result.steps.append(StepResult(Step.RESOLVE, Outcome.NOT_TRIED))
    return result


async def retry_incident(
    engine: CamundaRestClient,
    incident: EngineIncident,
    *,
    variables: Mapping[str, Any] | None,
    retries: int,
) -> RetryResult:
    """Run the retry's steps against the engine; never raises for the engine's answers."""
    result = RetryResult(incident.incident_key)
    # Each request is bound here, while the conditions that make it apply are checked.
    steps: list[tuple[Step, Callable[[], Awaitable[None]] | None]] = [
        (
            Step.VARIABLES,
            partial(engine.set_variables, incident.element_instance_key, variables)
            if variables
            else None,
        ),
        (
            Step.RETRIES,
            partial(engine.update_job_retries, incident.job_key, retries)
            if incident.job_key
            else None,
        ),
        (Step.RESOLVE, partial(engine.resolve_incident, incident.incident_key)),
    ]
    failed = False
    for step, send in steps:
        if send is None:
            result.steps.append(StepResult(step, Outcome.NOT_NEEDED))
            continue
        if failed:
            result.steps.append(StepResult(step, Outcome.NOT_TRIED))
            continue
        try:
            await send()
        except (EngineUnavailableError, EngineRejectedError) as exc:
            failed = True
            result.steps.append(StepResult(step, Outcome.FAILED, _failure(exc), str(exc)))
            continue
        result.steps.append(StepResult(step, Outcome.DONE))
    return result


async def mark_resolved(session: AsyncSession, incident_key: int, now: datetime) -> None:
    """The engine accepted the resolution: the panel's copy says so at once, and its own
    record, when it arrives, changes nothing (a resolution is final)."""
    await session.execute(
        update(EngineIncident)
        .where(
            EngineIncident.incident_key == incident_key,
            EngineIncident.state == IncidentState.ACTIVE,
        )
        .values(state=IncidentState.RESOLVED, resolved_at=now)
    )
