"""Engine records as the Zeebe Redis exporter writes them (JSON format).

Only the fields the panel reads are declared; msgspec ignores the rest, so newer engine
versions that add fields keep working.

Each ``read_*`` function turns one record into what the panel applies, parsing everything
the record embeds (base64 resources, form JSON, BPMN XML, dates, variable values) up front.
A record that cannot be read raises ``UnreadableRecordError`` here, before any database work,
so the record consumer can set it aside without ever confusing it with an outage.
``None`` means the record is of no interest to the panel (a command, another intent).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.etree import ElementTree

import msgspec

_BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
T = TypeVar("T")


class UnreadableRecordError(ValueError):
    """The record cannot be read by this version of the panel; the message says why."""


class NotYetKnownError(LookupError):
    """A record refers to something whose own record has not been applied yet."""


class UserTaskValue(msgspec.Struct, frozen=True, rename="camel"):
    user_task_key: int
    process_instance_key: int
    element_instance_key: int
    bpmn_process_id: str
    element_id: str
    process_definition_key: int = -1
    assignee: str = ""
    candidate_groups_list: list[str] = msgspec.field(default_factory=list)
    candidate_users_list: list[str] = msgspec.field(default_factory=list)
    form_key: int = -1
    due_date: str = ""
    follow_up_date: str = ""
    priority: int = 50
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    # The engine's names of the attributes an UPDATED record changed; the record's other
    # attributes only repeat the task as it was.
    changed_attributes: list[str] = msgspec.field(default_factory=list)


class FormValue(msgspec.Struct, frozen=True, rename="camel"):
    form_key: int
    form_id: str
    version: int
    resource: str


class ProcessValue(msgspec.Struct, frozen=True, rename="camel"):
    process_definition_key: int
    bpmn_process_id: str
    version: int
    resource: str


class VariableValue(msgspec.Struct, frozen=True, rename="camel"):
    name: str
    # The variable's value as a JSON document.
    value: str
    scope_key: int
    process_instance_key: int
    bpmn_process_id: str = ""


class ProcessInstanceValue(msgspec.Struct, frozen=True, rename="camel"):
    bpmn_element_type: str
    flow_scope_key: int
    process_instance_key: int
    bpmn_process_id: str = ""
    parent_process_instance_key: int = -1
    parent_element_instance_key: int = -1
    process_definition_key: int = -1
    version: int = -1


class IncidentValue(msgspec.Struct, frozen=True, rename="camel"):
    process_instance_key: int
    error_type: str = "UNKNOWN"
    error_message: str = ""
    bpmn_process_id: str = ""
    process_definition_key: int = -1
    element_id: str = ""
    element_instance_key: int = -1
    job_key: int = -1
    # Pairs of (process instance, element instance) from the root instance down to the
    # failing element, one per call activity level.
    element_instance_path: list[list[int]] = msgspec.field(default_factory=list)


class _Record(msgspec.Struct, frozen=True, rename="camel"):
    intent: str
    record_type: str
    key: int = -1
    position: int = 0
    # When the engine wrote the record, in milliseconds since the epoch.
    timestamp: int = -1


class _UserTaskRecord(_Record, frozen=True):
    value: UserTaskValue | None = None


class _FormRecord(_Record, frozen=True):
    value: FormValue | None = None


class _ProcessRecord(_Record, frozen=True):
    value: ProcessValue | None = None


class _VariableRecord(_Record, frozen=True):
    value: VariableValue | None = None


class _ProcessInstanceRecord(_Record, frozen=True):
    value: ProcessInstanceValue | None = None


class _IncidentRecord(_Record, frozen=True):
    value: IncidentValue | None = None


@dataclass(frozen=True, slots=True)
class FormDeployed:
    form_key: int
    form_id: str
    version: int
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessDeployed:
    process_definition_key: int
    bpmn_process_id: str
    version: int
    element_names: dict[str, str]


@dataclass(frozen=True, slots=True)
class UserTaskEvent:
    intent: str
    task: UserTaskValue
    due_date: datetime | None
    follow_up_date: datetime | None
    position: int = 0
    # The attributes this record changes (names from USER_TASK_ATTRIBUTES): what ASSIGNED,
    # UPDATED and MIGRATED records are applied as.
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class VariableEvent:
    intent: str
    name: str
    value: Any
    scope_key: int
    process_instance_key: int
    bpmn_process_id: str
    position: int


@dataclass(frozen=True, slots=True)
class ProcessInstanceEvent:
    intent: str
    key: int
    value: ProcessInstanceValue
    position: int = 0
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    intent: str
    incident_key: int
    incident: IncidentValue
    # The instance at the top of the call-activity chain the failing element runs in.
    root_process_instance_key: int
    position: int
    timestamp: datetime | None


def _decode(payload: bytes | str, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(payload, type=kind)
    except msgspec.MsgspecError as exc:
        raise UnreadableRecordError(f"not a record this version reads: {exc}") from exc


def _value(value: T | None) -> T:
    if value is None:
        raise UnreadableRecordError("the record has no value")
    return value


def parse_engine_datetime(value: str) -> datetime | None:
    """Due and follow-up dates arrive as ISO 8601 strings, empty when not set."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise UnreadableRecordError(f"not an ISO 8601 date: {value!r}") from exc


def parse_record_timestamp(milliseconds: int) -> datetime | None:
    """A record's timestamp; records written by hand may have none."""
    if milliseconds < 0:
        return None
    try:
        return datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise UnreadableRecordError(f"not a timestamp: {milliseconds!r}") from exc


def _base64(resource: str) -> bytes:
    try:
        return base64.b64decode(resource, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnreadableRecordError(f"resource is not base64: {exc}") from exc


def element_names(bpmn_xml: bytes) -> dict[str, str]:
    """Names of the flow elements of a BPMN document, by element id."""
    try:
        # The document was accepted by the engine, which parses it without external entities;
        # ElementTree does not resolve them either.
        root = ElementTree.fromstring(bpmn_xml)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise UnreadableRecordError(f"BPMN resource is not XML: {exc}") from exc
    names: dict[str, str] = {}
    for element in root.iter():
        element_id, name = element.get("id"), element.get("name")
        if element_id and name and element.tag.startswith(_BPMN_NS):
            names[element_id] = " ".join(name.split())
    return names


def _is_event(record: _Record, *intents: str) -> bool:
    return record.record_type == "EVENT" and (not intents or record.intent in intents)


def read_form(payload: bytes | str) -> FormDeployed | None:
    record = _decode(payload, _FormRecord)
    if not _is_event(record, "CREATED"):
        return None
    form = _value(record.value)
    resource = _base64(form.resource)
    try:
        schema = json.loads(resource)
    except ValueError as exc:
        raise UnreadableRecordError(f"form {form.form_id} is not JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise UnreadableRecordError(f"form {form.form_id} is not a JSON object")
    return FormDeployed(form.form_key, form.form_id, form.version, schema)


def read_process(payload: bytes | str) -> ProcessDeployed | None:
    record = _decode(payload, _ProcessRecord)
    if not _is_event(record, "CREATED"):
        return None
    process = _value(record.value)
    names = element_names(_base64(process.resource))
    return ProcessDeployed(
        process.process_definition_key, process.bpmn_process_id, process.version, names
    )


# The attributes of a user task that records change after its creation, by the engine's
# names (UPDATED's ``changedAttributes``; "assignee" for ASSIGNED, "elementId" for a
# migration, which moves the task to another element, process and name).
ASSIGNEE = "assignee"
CANDIDATE_GROUPS = "candidateGroupsList"
CANDIDATE_USERS = "candidateUsersList"
DUE_DATE = "dueDate"
FOLLOW_UP_DATE = "followUpDate"
PRIORITY = "priority"
ELEMENT = "elementId"
UPDATABLE_ATTRIBUTES = frozenset(
    {CANDIDATE_GROUPS, CANDIDATE_USERS, DUE_DATE, FOLLOW_UP_DATE, PRIORITY}
)
USER_TASK_ATTRIBUTES = UPDATABLE_ATTRIBUTES | {ASSIGNEE, ELEMENT}


def _changed(intent: str, task: UserTaskValue) -> frozenset[str]:
    if intent == "ASSIGNED":
        return frozenset({ASSIGNEE})
    if intent == "UPDATED":
        # An attribute a newer engine can change and this panel does not keep is left alone.
        return UPDATABLE_ATTRIBUTES.intersection(task.changed_attributes)
    if intent == "MIGRATED":
        return frozenset({ELEMENT})
    return frozenset()


def read_user_task(payload: bytes | str) -> UserTaskEvent | None:
    record = _decode(payload, _UserTaskRecord)
    if not _is_event(record):
        return None
    task = _value(record.value)
    return UserTaskEvent(
        record.intent,
        task,
        parse_engine_datetime(task.due_date),
        parse_engine_datetime(task.follow_up_date),
        record.position,
        _changed(record.intent, task),
    )


def read_variable(payload: bytes | str) -> VariableEvent | None:
    record = _decode(payload, _VariableRecord)
    if not _is_event(record, "CREATED", "UPDATED"):
        return None
    variable = _value(record.value)
    try:
        value = json.loads(variable.value)
    except ValueError as exc:
        raise UnreadableRecordError(f"variable {variable.name!r} is not JSON: {exc}") from exc
    return VariableEvent(
        record.intent,
        variable.name,
        value,
        variable.scope_key,
        variable.process_instance_key,
        variable.bpmn_process_id,
        record.position,
    )


def read_process_instance(payload: bytes | str) -> ProcessInstanceEvent | None:
    record = _decode(payload, _ProcessInstanceRecord)
    if not _is_event(record):
        return None
    return ProcessInstanceEvent(
        record.intent,
        record.key,
        _value(record.value),
        record.position,
        parse_record_timestamp(record.timestamp),
    )


def read_incident(payload: bytes | str) -> IncidentEvent | None:
    record = _decode(payload, _IncidentRecord)
    if not _is_event(record, "CREATED", "RESOLVED", "MIGRATED"):
        return None
    incident = _value(record.value)
    path = incident.element_instance_path
    if path and not path[0]:
        raise UnreadableRecordError(f"incident {record.key} has an empty element instance path")
    root = path[0][0] if path else incident.process_instance_key
    return IncidentEvent(
        record.intent,
        record.key,
        incident,
        root,
        record.position,
        parse_record_timestamp(record.timestamp),
    )
