"""Engine records as the Zeebe Redis exporter writes them (JSON format).

Only the fields the panel reads are declared; msgspec ignores the rest, so newer engine
versions that add fields keep working.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import msgspec


class UserTaskValue(msgspec.Struct, frozen=True, rename="camel"):
    user_task_key: int
    process_instance_key: int
    element_instance_key: int
    bpmn_process_id: str
    element_id: str
    process_definition_key: int = -1
    assignee: str = ""
    candidate_groups_list: list[str] = msgspec.field(default_factory=list)
    form_key: int = -1
    due_date: str = ""
    follow_up_date: str = ""
    priority: int = 50
    variables: dict[str, Any] = msgspec.field(default_factory=dict)


class FormValue(msgspec.Struct, frozen=True, rename="camel"):
    form_key: int
    form_id: str
    version: int
    resource: str

    def schema(self) -> dict[str, Any]:
        """The form's JSON document (the exporter sends the resource base64-encoded)."""
        decoded: dict[str, Any] = json.loads(base64.b64decode(self.resource))
        return decoded


class ProcessValue(msgspec.Struct, frozen=True, rename="camel"):
    process_definition_key: int
    bpmn_process_id: str
    version: int
    resource: str

    def bpmn_xml(self) -> bytes:
        return base64.b64decode(self.resource)


class ProcessRecord(msgspec.Struct, frozen=True, rename="camel"):
    key: int
    intent: str
    record_type: str
    value: ProcessValue


class UserTaskRecord(msgspec.Struct, frozen=True, rename="camel"):
    key: int
    intent: str
    record_type: str
    value: UserTaskValue
    position: int = 0
    partition_id: int = 1


class FormRecord(msgspec.Struct, frozen=True, rename="camel"):
    key: int
    intent: str
    record_type: str
    value: FormValue


def decode_user_task(payload: bytes | str) -> UserTaskRecord:
    return msgspec.json.decode(payload, type=UserTaskRecord)


def decode_form(payload: bytes | str) -> FormRecord:
    return msgspec.json.decode(payload, type=FormRecord)


def decode_process(payload: bytes | str) -> ProcessRecord:
    return msgspec.json.decode(payload, type=ProcessRecord)


def parse_engine_datetime(value: str) -> datetime | None:
    """Due and follow-up dates arrive as ISO 8601 strings, empty when not set."""
    if not value:
        return None
    return datetime.fromisoformat(value)


class VariableValue(msgspec.Struct, frozen=True, rename="camel"):
    name: str
    # The variable's value as a JSON document.
    value: str
    scope_key: int
    process_instance_key: int


class VariableRecord(msgspec.Struct, frozen=True, rename="camel"):
    intent: str
    record_type: str
    value: VariableValue
    position: int = 0


class ProcessInstanceValue(msgspec.Struct, frozen=True, rename="camel"):
    bpmn_element_type: str
    flow_scope_key: int
    process_instance_key: int


class ProcessInstanceRecord(msgspec.Struct, frozen=True, rename="camel"):
    key: int
    intent: str
    record_type: str
    value: ProcessInstanceValue


def decode_variable(payload: bytes | str) -> VariableRecord:
    return msgspec.json.decode(payload, type=VariableRecord)


def decode_process_instance(payload: bytes | str) -> ProcessInstanceRecord:
    return msgspec.json.decode(payload, type=ProcessInstanceRecord)
