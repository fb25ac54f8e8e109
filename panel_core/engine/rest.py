"""Client of the Camunda 8 REST API (``/v2``) of the cluster the panel works with.

httpx rather than Camunda's generated Python SDK: the SDK follows the newest API (8.8+), while
the panel must speak to the 8.6 cluster it is deployed with; the handful of calls we make are
small, and with httpx we control timeouts and tell "try again later" apart from "rejected".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import msgspec


class DeliveryOutcome(enum.Enum):
    DELIVERED = "delivered"
    # The engine answered and will never accept this command (a bad or oversized request).
    REJECTED = "rejected"
    # The engine has no such task (any more): completed or cancelled, perhaps by an earlier
    # attempt of ours whose answer was lost. Its own record of the task tells which.
    NOT_FOUND = "not-found"
    # The engine could not be reached or is busy; the same command may succeed later.
    RETRY = "retry"


class Delivery(msgspec.Struct, frozen=True):
    outcome: DeliveryOutcome
    detail: str = ""


class EngineUnavailableError(RuntimeError):
    """The engine did not answer, or answered that it cannot take the request now."""


class EngineRejectedError(RuntimeError):
    """The engine refused the request for a reason that will not go away by retrying."""


class EngineNotFoundError(EngineRejectedError):
    """The engine has no such resource (process definition, instance, task)."""


class EngineConflictError(EngineRejectedError):
    """The engine refused because of the resource's state (a task someone else holds)."""


class ProcessInstance(msgspec.Struct, frozen=True, rename="camel"):
    process_instance_key: int
    process_definition_key: int
    process_definition_id: str
    process_definition_version: int


# HTTP statuses on which the same command is worth sending again.
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refused_for_good(response: httpx.Response) -> bool:
    """A 500 the gateway gives for a request the broker can never take (over its
    ``maxMessageSize``): sending it again would fail forever."""
    return response.status_code == 500 and _problem(response).get("title") == "MALFORMED_REQUEST"


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return f"HTTP {response.status_code}: {body.get('detail') or body.get('title') or ''}"
    return f"HTTP {response.status_code}"


class CamundaRestClient:
    def __init__(self, base_url: str, timeout_seconds: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/v2", timeout=timeout_seconds
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> CamundaRestClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def _raise_for(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        detail = _problem_detail(response)
        if response.status_code == 404:
            raise EngineNotFoundError(detail)
        if response.status_code in _RETRYABLE and not _refused_for_good(response):
            raise EngineUnavailableError(detail)
        raise EngineRejectedError(detail)

    async def topology(self) -> dict[str, Any]:
        response = await self._request("GET", "/topology")
        self._raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    async def deploy(self, paths: Iterable[Path]) -> dict[str, Any]:
        files = [("resources", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        response = await self._request("POST", "/deployments", files=files)
        self._raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    async def create_process_instance(
        self, process_id: str, variables: Mapping[str, Any]
    ) -> ProcessInstance:
        response = await self._request(
            "POST",
            "/process-instances",
            json={"processDefinitionId": process_id, "variables": dict(variables)},
        )
        self._raise_for(response)
        return msgspec.convert(response.json(), ProcessInstance, strict=False)

    async def cancel_process_instance(self, process_instance_key: int) -> None:
        response = await self._request(
            "POST", f"/process-instances/{process_instance_key}/cancellation", json={}
        )
        self._raise_for(response)

    async def assign_user_task(
        self, user_task_key: int, assignee: str, *, allow_override: bool = False
    ) -> None:
        """Assign a user task; without ``allow_override``, a task someone holds is refused
        (``EngineConflictError``), so two people never claim the same task."""
        response = await self._request(
            "POST",
            f"/user-tasks/{user_task_key}/assignment",
            json={"assignee": assignee, "allowOverride": allow_override},
        )
        if response.status_code == 409 and not allow_override:
            raise EngineConflictError(_problem_detail(response))
        self._raise_for(response)

    async def unassign_user_task(self, user_task_key: int) -> None:
        response = await self._request("DELETE", f"/user-tasks/{user_task_key}/assignee")
        self._raise_for(response)

    async def update_user_task(self, user_task_key: int, changeset: Mapping[str, Any]) -> None:
        """Change a user task's due date, follow-up date or priority."""
        response = await self._request(
            "PATCH", f"/user-tasks/{user_task_key}", json={"changeset": dict(changeset)}
        )
        self._raise_for(response)

    def _raise_for_command(self, response: httpx.Response) -> None:
        """As ``_raise_for``, but a 409 is the resource's state (a job or incident that is
        no longer what the caller saw), which sending the same request again never changes."""
        if response.status_code == 409:
            raise EngineConflictError(_problem_detail(response))
        self._raise_for(response)

    async def set_variables(
        self, element_instance_key: int, variables: Mapping[str, Any], *, local: bool = False
    ) -> None:
        """Set variables from an element instance's scope: without ``local``, each one goes
        to the nearest scope that has it already, else to the process instance."""
        response = await self._request(
            "PUT",
            f"/element-instances/{element_instance_key}/variables",
            json={"variables": dict(variables), "local": local},
        )
        self._raise_for_command(response)

    async def update_job_retries(self, job_key: int, retries: int) -> None:
        response = await self._request(
            "PATCH", f"/jobs/{job_key}", json={"changeset": {"retries": retries}}
        )
        self._raise_for_command(response)

    async def resolve_incident(self, incident_key: int) -> None:
        """Resolve an incident; a job's incident is refused while the job has no retries."""
        response = await self._request("POST", f"/incidents/{incident_key}/resolution", json={})
        self._raise_for_command(response)

    async def complete_user_task(
        self, user_task_key: int, variables: Mapping[str, Any]
    ) -> Delivery:
        """Complete a Camunda user task; never raises for engine or network trouble."""
        try:
            response = await self._request(
                "POST",
                f"/user-tasks/{user_task_key}/completion",
                json={"variables": dict(variables)},
            )
        except EngineUnavailableError as exc:
            return Delivery(DeliveryOutcome.RETRY, str(exc))
        if response.is_success:
            return Delivery(DeliveryOutcome.DELIVERED)
        detail = _problem_detail(response)
        if response.status_code == 404:
            return Delivery(DeliveryOutcome.NOT_FOUND, detail)
        if _refused_for_good(response):
            return Delivery(DeliveryOutcome.REJECTED, detail)
        if response.status_code in _RETRYABLE or response.status_code in {401, 403}:
            # 401/403 mean the panel's credentials are wrong: an operator can fix that, and
            # the participant's submission must survive until then.
            return Delivery(DeliveryOutcome.RETRY, detail)
        return Delivery(DeliveryOutcome.REJECTED, detail)
