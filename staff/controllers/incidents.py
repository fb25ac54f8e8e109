"""Failed automatic steps (the engine's incidents) for operators and team managers: the list
grouped by problem, one incident with its retry, and the retry of a whole group.

Nobody else sees or retries them: every route answers 403 before a body is read. Every retry
that is attempted is audited with the reason given and how each step went.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import log as audit
from panel_core.cases.case_types import deployed as descriptors
from panel_core.db.models import IncidentState
from panel_core.engine.incidents import (
    BULK_LIMIT,
    MAX_REASON_LENGTH,
    MAX_RETRIES,
    Failure,
    IncidentRow,
    Outcome,
    RetryResult,
    Step,
    VariablesError,
    grouped,
    incident_rows,
    mark_resolved,
    may_operate,
    open_incidents,
    parse_variables,
    refused_before_sending,
    retry_incident,
)
from panel_core.i18n import N_, gettext, pick
from panel_core.identity.actors import StaffActor
from panel_core.settings import Settings
from panel_web.locale import safe_return_path
from panel_web.request import client_of
from staff.dependencies import StaffController, StaffServices, require_staff, staff_of

NOT_ALLOWED = N_("Only operators and team managers can see and retry failed automatic steps.")
NOT_FOUND = "Not found"
NEED_REASON = N_("Say why you retry: the audit log keeps it.")
REASON_TOO_LONG = N_("Keep the reason to at most 500 characters.")
BAD_RETRIES = N_("Enter a whole number of retries from 1 to 10.")
BAD_VARIABLES = N_(
    'Enter the variables as a JSON object, for example {"name": "value"}, or leave the field empty.'
)
GONE = N_("This failed step is no longer open: it has been retried or its process has ended.")
NOTHING_SELECTED = N_("None of these failed steps is open any more.")

ERROR_TYPES = {
    "JOB_NO_RETRIES": N_("A service task ran out of retries"),
    "CONDITION_ERROR": N_("A gateway's condition could not be evaluated"),
    "EXTRACT_VALUE_ERROR": N_("A value could not be read from the variables"),
    "IO_MAPPING_ERROR": N_("A variable mapping failed"),
    "CALLED_ELEMENT_ERROR": N_("A called process could not be started"),
    "UNHANDLED_ERROR_EVENT": N_("A BPMN error that nothing catches"),
}
STEP_NAMES = {
    Step.VARIABLES: N_("Fix the variables"),
    Step.RETRIES: N_("Give the job retries"),
    Step.RESOLVE: N_("Resolve the incident"),
}
OUTCOMES = {
    Outcome.DONE: N_("done"),
    Outcome.FAILED: N_("failed"),
    Outcome.NOT_NEEDED: N_("not needed"),
    Outcome.NOT_TRIED: N_("not sent: an earlier step failed"),
}
FAILURES = {
    Failure.UNAVAILABLE: N_("The engine could not be reached or is busy. Try again in a moment."),
    Failure.NOT_FOUND: N_(
        "The engine no longer has it: it may have been retried, or its process cancelled, "
        "in the meantime."
    ),
    Failure.CONFLICT: N_("The engine refused: it is no longer in the state shown here."),
    Failure.REFUSED: N_("The engine refused the request."),
    Failure.INVALID: N_("The variables are not a JSON object, so nothing was sent."),
}


def require_operator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    services: StaffServices = connection.app.state.services
    if not may_operate(staff_of(connection), services.settings.staff_operator_role):
        raise PermissionDeniedException(NOT_ALLOWED)


def operate_link(settings: Settings, process_instance_key: int) -> str:
    """The instance in Camunda Operate, where the bank runs one; else empty."""
    base = settings.operate_url.strip().rstrip("/")
    return f"{base}/processes/{process_instance_key}" if base else ""


def template_globals(settings: Settings) -> dict[str, Callable[..., Any]]:
    """What every dashboard page may ask: whether to offer failed steps, and where Operate is."""
    return {
        "may_operate": lambda staff: (
            bool(staff) and may_operate(staff, settings.staff_operator_role)
        ),
        "operate_link": lambda key: operate_link(settings, int(key)) if key else "",
    }


def error_type_label(error_type: str) -> str:
    label = ERROR_TYPES.get(error_type)
    return gettext(label) if label else error_type


def step_name(step: Step) -> str:
    return gettext(STEP_NAMES[step])


def outcome_label(outcome: Outcome) -> str:
    return gettext(OUTCOMES[outcome])


def failure_text(failure: Failure | None) -> str:
    return gettext(FAILURES[failure]) if failure else ""


@dataclass(slots=True)
class RetryForm:
    reason: str = ""
    retries: str = "1"
    variables: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def retry_count(self) -> int:
        return int(self.retries)


def read_form(values: dict[str, str], *, with_retries: bool, with_variables: bool) -> RetryForm:
    form = RetryForm(
        reason=values.get("reason", "").strip(),
        retries=values.get("retries", "1").strip() or "1",
        variables=values.get("variables", "") if with_variables else "",
    )
    if not form.reason:
        form.errors["reason"] = gettext(NEED_REASON)
    elif len(form.reason) > MAX_REASON_LENGTH:
        form.errors["reason"] = gettext(REASON_TOO_LONG)
    if with_retries and not (form.retries.isdigit() and 1 <= int(form.retries) <= MAX_RETRIES):
        form.errors["retries"] = gettext(BAD_RETRIES)
    return form


def _back(return_to: str, notice: str, anchor: str = "") -> str:
    """``return_to`` on this site, with the notice added to whatever query it has."""
    path = safe_return_path(return_to)
    parts = urlsplit(path)
    query = f"{parts.query}&" if parts.query else ""
    return f"{parts.path}?{query}{urlencode({'notice': notice})}{anchor}"


class IncidentsController(StaffController):
    path = "/incidents"
    include_in_schema = False
    guards = [require_staff, require_operator]  # noqa: RUF012 - Litestar reads class attributes

    async def _names(self, db: AsyncSession) -> dict[str, str]:
        return {key: pick(d.name) for key, d in (await descriptors(db)).items()}

    def _context(self, names: dict[str, str]) -> dict[str, Any]:
        return {
            "type_name": lambda case_type: names.get(case_type, case_type) if case_type else "",
            "error_type_label": error_type_label,
            "step_name": step_name,
            "outcome_label": outcome_label,
            "failure_text": failure_text,
            "max_retries": MAX_RETRIES,
            "bulk_limit": BULK_LIMIT,
        }

    async def _list(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        *,
        notice: str = "",
        count: int = 0,
        failed_group: str = "",
        form: RetryForm | None = None,
        results: list[tuple[IncidentRow, RetryResult]] | None = None,
        status_code: int = 200,
    ) -> Template:
        rows = await open_incidents(db)
        message = ""
        if notice == "retried":
            message = gettext("Failed steps retried: %(count)s.", count=count)
        elif notice == "incident-retried":
            message = gettext("The step was retried.")
        return Template(
            "staff/incidents.html.j2",
            context={
                "staff": staff,
                "groups": grouped(rows),
                "total": len(rows),
                "message": message,
                "failed_group": failed_group,
                "form": form or RetryForm(),
                "blank": RetryForm(),
                "results": results or [],
                **self._context(await self._names(db)),
            },
            status_code=status_code,
        )

    @get("/")
    async def incident_list(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        notice: FromQuery[str] = "",
        count: FromQuery[int] = 0,
    ) -> Template:
        return await self._list(db, services, staff, notice=notice, count=count)

    async def _page(
        self,
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        row: IncidentRow,
        *,
        return_to: str,
        form: RetryForm | None = None,
        result: RetryResult | None = None,
        notice: str = "",
        status_code: int = 200,
    ) -> Template:
        return Template(
            "staff/incident.html.j2",
            context={
                "staff": staff,
                "row": row,
                "message": gettext("The step was retried.") if notice == "retried" else "",
                "open": row.incident.state == IncidentState.ACTIVE,
                "return_to": safe_return_path(return_to) if return_to else "",
                "form": form or RetryForm(),
                "result": result,
                **self._context(await self._names(db)),
            },
            status_code=status_code,
        )

    async def _row(self, db: AsyncSession, incident_key: int) -> IncidentRow:
        rows = await incident_rows(db, [incident_key])
        if not rows or rows[0].incident.created_at is None:
            raise NotFoundException(NOT_FOUND)
        return rows[0]

    @get("/{incident_key:int}")
    async def incident_page(
        self,
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        incident_key: FromPath[int],
        return_to: FromQuery[str] = "",
        notice: FromQuery[str] = "",
    ) -> Template:
        row = await self._row(db, incident_key)
        return await self._page(db, services, staff, row, return_to=return_to, notice=notice)

    async def _retry_one(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        services: StaffServices,
        staff: StaffActor,
        row: IncidentRow,
        form: RetryForm,
        *,
        variables: dict[str, Any] | None,
        invalid_variables: str = "",
        batch: str | None = None,
    ) -> RetryResult:
        incident = row.incident
        retries = form.retry_count if incident.job_key else 0
        if invalid_variables:
            result = refused_before_sending(invalid_variables, incident)
        else:
            result = await retry_incident(
                services.engine, incident, variables=variables, retries=retries
            )
        if result.succeeded:
            await mark_resolved(
                db, incident.incident_key, datetime.fromtimestamp(services.clock.now(), UTC)
            )
        details: dict[str, Any] = {
            "incident": str(incident.incident_key),
            "process_instance": str(incident.process_instance_key),
            "element": incident.element_id,
            "error_type": incident.error_type,
            "reason": form.reason,
            "steps": result.summary(),
            "succeeded": result.succeeded,
        }
        if incident.job_key:
            details |= {"job": str(incident.job_key), "retries": retries}
        if variables:
            # Their names only: values an operator types may be anything, personal data too.
            details["variables"] = sorted(variables)
        if batch:
            details["batch"] = batch
        audit.record(
            db,
            audit.INCIDENT_RETRIED,
            case_id=row.case_id,
            actor=staff,
            client=client_of(request),
            **details,
        )
        await db.commit()
        return result

    @post("/{incident_key:int}/retry")
    async def retry(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
        incident_key: FromPath[int],
    ) -> Template | Redirect:
        row = await self._row(db, incident_key)
        posted = await request.form()
        values = {k: v for k, v in posted.items() if isinstance(v, str)}
        return_to = values.get("return_to", "")
        form = read_form(values, with_retries=bool(row.incident.job_key), with_variables=True)
        if row.incident.state != IncidentState.ACTIVE:
            form.errors["state"] = gettext(GONE)
        variables: dict[str, Any] | None = None
        invalid = ""
        try:
            variables = parse_variables(form.variables)
        except VariablesError as exc:
            form.errors["variables"] = gettext(BAD_VARIABLES)
            invalid = str(exc)
        if set(form.errors) - {"variables"}:
            return await self._page(
                db, services, staff, row, return_to=return_to, form=form, status_code=400
            )
        result = await self._retry_one(
            request, db, services, staff, row, form, variables=variables, invalid_variables=invalid
        )
        if not result.succeeded:
            status = 400 if invalid else 502
            return await self._page(
                db, services, staff, row, return_to=return_to, form=form, result=result,
                status_code=status,
            )  # fmt: skip
        if return_to:
            # Back on a case page, to its failed steps, where the notice is.
            anchor = "#incidents" if return_to.startswith("/cases/") else ""
            return Redirect(_back(return_to, "incident-retried", anchor), status_code=303)
        return Redirect(_back(f"/incidents/{incident_key}", "retried"), status_code=303)

    @post("/retry")
    async def retry_group(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[StaffServices],
        staff: NamedDependency[StaffActor],
    ) -> Template | Redirect:
        """Retry the failed steps of one group as the list showed them: only those still
        open and still of that group, at most ``BULK_LIMIT``."""
        posted = await request.form()
        values = {k: v for k, v in posted.items() if isinstance(v, str)}
        group = values.get("group", "")
        keys = []
        for value in posted.getall("incident"):
            if isinstance(value, str) and value.isdigit():
                keys.append(int(value))
        rows = [
            row
            for row in await incident_rows(db, list(dict.fromkeys(keys))[:BULK_LIMIT])
            if row.incident.state == IncidentState.ACTIVE and row.group == group
        ]
        form = read_form(values, with_retries=True, with_variables=False)
        if not rows:
            form.errors["group"] = gettext(NOTHING_SELECTED)
        if form.errors:
            return await self._list(
                db, services, staff, failed_group=group, form=form, status_code=400
            )
        batch = str(uuid.uuid4())
        results = [
            (row, await self._retry_one(
                request, db, services, staff, row, form, variables=None, batch=batch
            ))
            for row in rows
        ]  # fmt: skip
        if all(result.succeeded for _, result in results):
            return Redirect(
                f"/incidents/?{urlencode({'notice': 'retried', 'count': len(results)})}",
                status_code=303,
            )
        return await self._list(
            db, services, staff, failed_group=group, form=form, results=results, status_code=502
        )
