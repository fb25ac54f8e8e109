"""Who acts: a participant of one case, or a member of the bank's staff.

Use cases take an actor and decide with one policy what it may see and do, so the same
rule serves the participants' panel and the staff dashboard.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from, as the audit log records it."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class ParticipantActor:
    case_id: uuid.UUID
    participant_id: uuid.UUID

    @property
    def reference(self) -> str:
        """How the actor is named in records it leaves (``submitted_by``, drafts)."""
        return str(self.participant_id)


@dataclass(frozen=True, slots=True)
class StaffActor:
    # The identity provider's stable id of the person (the ID token's ``sub``).
    subject: str
    # What the engine knows them by: a task's assignee is this username.
    username: str
    name: str
    # Candidate groups they work from (the provider's groups).
    groups: frozenset[str]
    roles: frozenset[str]
    # Team managers see every task and may reassign and reschedule.
    manager: bool = False

    @property
    def reference(self) -> str:
        return f"staff:{self.username}"


Actor = ParticipantActor | StaffActor
