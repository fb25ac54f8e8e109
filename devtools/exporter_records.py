"""Engine records of credit cases, as the Zeebe Redis exporter (JSON format) writes them.

For the record consumer's benchmark and tests: a backlog of many process instances whose
records interleave in the streams the way a busy engine exports them, each instance's in
its log order. The records carry the envelope and value fields the exporter writes (also
those the panel does not read), with the shipped credit case type's BPMN and forms as the
deployments' resources.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from panel_core import constants as c

CASE_TYPE_DIR = Path(__file__).resolve().parent.parent / "bpmn" / "credit-application"
PROCESS_ID = "credit-application"
PARTITION = 1
# Zeebe keys carry their partition in the top bits.
KEY_BASE = PARTITION << 51
PARTICIPANT_TASKS = (
    ("task-consents", "credit-consents"),
    ("task-income", "credit-income"),
    ("task-questionnaire", "credit-questionnaire"),
)
VALUE_TYPE = {
    c.STREAM_PROCESS: "PROCESS",
    c.STREAM_FORM: "FORM",
    c.STREAM_PROCESS_INSTANCE: "PROCESS_INSTANCE",
    c.STREAM_VARIABLE: "VARIABLE",
    c.STREAM_USER_TASK: "USER_TASK",
    c.STREAM_INCIDENT: "INCIDENT",
    c.STREAM_JOB: "JOB",
}


@dataclass(frozen=True, slots=True)
class Exported:
    stream: str
    record: dict[str, Any]

    @property
    def position(self) -> int:
        return int(self.record["position"])

    @property
    def instance(self) -> int:
        return int(self.record["value"].get("processInstanceKey", -1))

    def encode(self) -> bytes:
        return json.dumps(self.record, separators=(",", ":")).encode()


@dataclass
class Engine:
    """Hands out keys and positions as one partition of the engine does."""

    next_key: int = KEY_BASE + 1
    next_position: int = 1
    timestamp: int = 1_700_000_000_000
    definition_key: int = 0
    form_keys: dict[str, int] = field(default_factory=dict)

    def key(self) -> int:
        self.next_key += 1
        return self.next_key

    def record(self, stream: str, intent: str, key: int, value: dict[str, Any]) -> Exported:
        position = self.next_position
        self.next_position += 1
        self.timestamp += 1
        return Exported(
            stream,
            {
                "partitionId": PARTITION,
                "value": value,
                "key": key,
                "position": position,
                "timestamp": self.timestamp,
                "recordType": "EVENT",
                "intent": intent,
                "valueType": VALUE_TYPE[stream],
                "rejectionType": "NULL_VAL",
                "rejectionReason": "",
                "brokerVersion": "8.6.7",
                "recordVersion": 1,
                "sourceRecordPosition": max(position - 1, 1),
                "operationReference": -1,
                "authorizations": {},
            },
        )


def deployments(engine: Engine) -> list[Exported]:
    """The credit case type's process and forms."""
    bpmn = (CASE_TYPE_DIR / "credit-application.bpmn").read_bytes()
    engine.definition_key = engine.key()
    out = [
        engine.record(
            c.STREAM_PROCESS,
            "CREATED",
            engine.definition_key,
            {
                "bpmnProcessId": PROCESS_ID,
                "version": 1,
                "processDefinitionKey": engine.definition_key,
                "resourceName": "credit-application.bpmn",
                "checksum": base64.b64encode(b"0" * 16).decode(),
                "resource": base64.b64encode(bpmn).decode(),
                "tenantId": "<default>",
                "versionTag": "",
                "deploymentKey": engine.definition_key - 1,
            },
        )
    ]
    for form in sorted((CASE_TYPE_DIR / "forms").glob("*.form")):
        form_id = json.loads(form.read_bytes())["id"]
        engine.form_keys[form_id] = engine.key()
        out.append(
            engine.record(
                c.STREAM_FORM,
                "CREATED",
                engine.form_keys[form_id],
                {
                    "formId": form_id,
                    "version": 1,
                    "formKey": engine.form_keys[form_id],
                    "resourceName": form.name,
                    "checksum": base64.b64encode(b"0" * 16).decode(),
                    "resource": base64.b64encode(form.read_bytes()).decode(),
                    "tenantId": "<default>",
                    "versionTag": "",
                    "deploymentKey": engine.definition_key - 1,
                },
            )
        )
    return out


class CreditCase:
    """One credit case's process instance, stepping through its records in log order."""

    def __init__(self, engine: Engine, rng: random.Random, *, ends: bool = True) -> None:
        self.engine = engine
        self.rng = rng
        self.ends = ends
        self.instance = engine.key()
        self.case_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.participant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _element(
        self, intent: str, key: int, element_id: str, element_type: str, scope: int
    ) -> Exported:
        return self.engine.record(
            c.STREAM_PROCESS_INSTANCE,
            intent,
            key,
            {
                "bpmnElementType": element_type,
                "elementId": element_id,
                "bpmnProcessId": PROCESS_ID,
                "version": 1,
                "processDefinitionKey": self.engine.definition_key,
                "processInstanceKey": self.instance,
                "flowScopeKey": scope,
                "bpmnEventType": "UNSPECIFIED",
                "parentProcessInstanceKey": -1,
                "parentElementInstanceKey": -1,
                "tenantId": "<default>",
                "elementInstancePath": [],
                "processDefinitionPath": [],
                "callingElementPath": [],
            },
        )

    def _variable(self, intent: str, name: str, value: Any, scope: int) -> Exported:
        return self.engine.record(
            c.STREAM_VARIABLE,
            intent,
            self.engine.key(),
            {
                "name": name,
                "value": json.dumps(value),
                "scopeKey": scope,
                "processInstanceKey": self.instance,
                "processDefinitionKey": self.engine.definition_key,
                "bpmnProcessId": PROCESS_ID,
                "tenantId": "<default>",
            },
        )

    def _job(self, intent: str, key: int, element: int, job_type: str) -> Exported:
        return self.engine.record(
            c.STREAM_JOB,
            intent,
            key,
            {
                "type": job_type,
                "elementId": "status-collecting",
                "elementInstanceKey": element,
                "processInstanceKey": self.instance,
                "bpmnProcessId": PROCESS_ID,
                "processDefinitionKey": self.engine.definition_key,
                "processDefinitionVersion": 1,
                "worker": "customer-panel-worker" if intent != "CREATED" else "",
                "retries": 3,
                "deadline": -1,
                "errorMessage": "",
                "errorCode": "",
                "customHeaders": {"status": "collecting"},
                "variables": {},
                "tenantId": "<default>",
                "jobKind": "BPMN_ELEMENT",
                "jobListenerEventType": "UNSPECIFIED",
            },
        )

    def _task(
        self, intent: str, key: int, element: int, element_id: str, form_id: str, **extra: Any
    ) -> Exported:
        value = {
            "userTaskKey": key,
            "processInstanceKey": self.instance,
            "elementInstanceKey": element,
            "bpmnProcessId": PROCESS_ID,
            "processDefinitionKey": self.engine.definition_key,
            "processDefinitionVersion": 1,
            "elementId": element_id,
            "formKey": self.engine.form_keys[form_id],
            "externalFormReference": "",
            "assignee": self.participant_id,
            "candidateGroupsList": [],
            "candidateUsersList": [],
            "dueDate": "",
            "followUpDate": "",
            "priority": 50,
            "changedAttributes": [],
            "customHeaders": {},
            "variables": {},
            "action": "",
            "creationTimestamp": self.engine.timestamp,
            "tenantId": "<default>",
        }
        value.update(extra)
        return self.engine.record(c.STREAM_USER_TASK, intent, key, value)

    def steps(self) -> Iterator[list[Exported]]:
        """The instance's records, one engine processing step (a list of records) at a time."""
        pi = self.instance
        yield [
            self._element("ELEMENT_ACTIVATING", pi, PROCESS_ID, "PROCESS", -1),
            self._element("ELEMENT_ACTIVATED", pi, PROCESS_ID, "PROCESS", -1),
            self._variable("CREATED", c.VAR_CASE_ID, self.case_id, pi),
            self._variable("CREATED", c.VAR_CASE_NUMBER, f"KR/{self.rng.randrange(10**6)}", pi),
            self._variable(
                "CREATED",
                c.VAR_PARTICIPANTS,
                [{"participantId": self.participant_id, "role": "primary-borrower"}],
                pi,
            ),
            self._variable("CREATED", "amount", self.rng.randrange(10_000, 500_000), pi),
        ]
        status = self.engine.key()
        job = self.engine.key()
        yield [
            self._element("ELEMENT_ACTIVATING", status, "status-collecting", "SERVICE_TASK", pi),
            self._element("ELEMENT_ACTIVATED", status, "status-collecting", "SERVICE_TASK", pi),
            self._job("CREATED", job, status, "customer-panel.case.set-status"),
        ]
        yield [
            self._job("COMPLETED", job, status, "customer-panel.case.set-status"),
            self._element("ELEMENT_COMPLETING", status, "status-collecting", "SERVICE_TASK", pi),
            self._element("ELEMENT_COMPLETED", status, "status-collecting", "SERVICE_TASK", pi),
        ]
        for element_id, form_id in PARTICIPANT_TASKS:
            element, task = self.engine.key(), self.engine.key()
            yield [
                self._element("ELEMENT_ACTIVATING", element, element_id, "USER_TASK", pi),
                self._variable("CREATED", c.VAR_PARTICIPANT, {"id": self.participant_id}, element),
                self._element("ELEMENT_ACTIVATED", element, element_id, "USER_TASK", pi),
                self._task("CREATED", task, element, element_id, form_id),
            ]
            yield [
                self._task("COMPLETED", task, element, element_id, form_id),
                self._variable("CREATED", f"{form_id}-answers", {"ok": True, "n": 3}, pi),
                self._variable("UPDATED", "amount", self.rng.randrange(10_000, 500_000), pi),
                self._element("ELEMENT_COMPLETING", element, element_id, "USER_TASK", pi),
                self._element("ELEMENT_COMPLETED", element, element_id, "USER_TASK", pi),
            ]
        element, task = self.engine.key(), self.engine.key()
        review = ("task-analyst-review", "credit-analyst-review")
        yield [
            self._element("ELEMENT_ACTIVATING", element, review[0], "USER_TASK", pi),
            self._element("ELEMENT_ACTIVATED", element, review[0], "USER_TASK", pi),
            self._task(
                "CREATED", task, element, *review, assignee="", candidateGroupsList=["analysts"]
            ),
        ]
        yield [self._task("ASSIGNED", task, element, *review, assignee="anna.analityk")]
        if not self.ends:
            return
        yield [
            self._task("COMPLETED", task, element, *review, assignee="anna.analityk"),
            self._element("ELEMENT_COMPLETING", element, review[0], "USER_TASK", pi),
            self._element("ELEMENT_COMPLETED", element, review[0], "USER_TASK", pi),
            self._element("ELEMENT_COMPLETING", pi, PROCESS_ID, "PROCESS", -1),
            self._element("ELEMENT_COMPLETED", pi, PROCESS_ID, "PROCESS", -1),
        ]


def backlog(
    instances: int, seed: int = 14, *, ends: bool = True
) -> tuple[list[Exported], list[Exported]]:
    """Deployments, then the records of many cases interleaved step by step at random."""
    rng = random.Random(seed)
    engine = Engine()
    deployed = deployments(engine)
    running = [CreditCase(engine, rng, ends=ends).steps() for _ in range(instances)]
    records: list[Exported] = []
    while running:
        steps = running[rng.randrange(len(running))]
        step = next(steps, None)
        if step is None:
            running.remove(steps)
        else:
            records.extend(step)
    # Positions are handed out as the steps were generated; the exporter writes them in the
    # order the engine processed the steps.
    records.sort(key=lambda r: r.position)
    return deployed, records


async def export(redis: Redis, records: list[Exported], chunk: int = 500) -> list[bytes]:
    """Write the records into their streams in order, as the exporter does; their entry ids."""
    ids: list[bytes] = []
    for start in range(0, len(records), chunk):
        async with redis.pipeline(transaction=False) as pipe:
            for exported in records[start : start + chunk]:
                pipe.xadd(exported.stream, {"record": exported.encode()})
            ids.extend(await pipe.execute())
    return ids
