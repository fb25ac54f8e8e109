"""Shapes of the JSON API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class TaskOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    element_id: str
    state: str
    form_id: str | None
    due_date: datetime | None
    priority: int
    created_at: datetime


class TaskDetailOut(TaskOut):
    form_schema: dict[str, Any] | None = None
    # The process variables the form reads (form-js' initial data), and only those.
    variables: dict[str, Any] = msgspec.field(default_factory=dict)


class CompletionIn(msgspec.Struct, forbid_unknown_fields=True):
    variables: dict[str, Any] = msgspec.field(default_factory=dict)


class CompletionOut(msgspec.Struct, rename="camel"):
    task_id: uuid.UUID
    state: str
    # True when the engine already accepted the completion; False when it is stored and
    # will be delivered as soon as the engine is reachable.
    delivered: bool


class ParticipantIn(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    # Validated, reduced to the keyed hash of the login fragment, and never stored.
    pesel: str
    phone: str
    locale: str = "pl"
    # Optional: where the bank's e-mail notifications and documents sent securely go.
    email: str = ""


class CaseIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    case_type: str
    participants: list[ParticipantIn]
    channel: str = "internet-banking"


class ParticipantOut(msgspec.Struct, rename="camel"):
    participant_id: uuid.UUID
    role: str


class CaseOut(msgspec.Struct, rename="camel"):
    case_id: uuid.UUID
    case_number: str
    # None while the engine has not started the process yet (it will, from the outbox).
    process_instance_key: str | None
    participants: list[ParticipantOut]


class CaseStateOut(msgspec.Struct, rename="camel"):
    case_id: uuid.UUID
    case_number: str
    case_type: str
    status: str
    process_instance_key: str | None
    participants: list[ParticipantOut]
