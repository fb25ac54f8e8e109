"""Relational model of the panel: cases, their participants, panel tasks and submissions."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import Uuid


def utcnow() -> datetime:
    return datetime.now(UTC)


def text_enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    """A column of an enum's values, stored as plain text (no database enum type to migrate)."""
    return Enum(
        kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: DateTime(timezone=True),
        uuid.UUID: Uuid,
    }


class TaskState(enum.StrEnum):
    OPEN = "open"
    # The participant submitted; the completion is stored and on its way to the engine.
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    # The engine cancelled the task (the case moved on or was cancelled).
    WITHDRAWN = "withdrawn"


class SubmissionState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # The engine refused this completion for good; the task went back to the participant,
    # who may send it again as a new submission.
    REJECTED = "rejected"
    # The engine no longer has the task (an earlier attempt got through and only its answer
    # was lost, or the task was completed or cancelled elsewhere): the engine's own record of
    # the task decides whether it is delivered or withdrawn.
    UNCONFIRMED = "unconfirmed"
    # The engine cancelled the task before the completion reached it.
    WITHDRAWN = "withdrawn"


# A task has at most one submission in these states; rejected and withdrawn ones stay on
# record beside it.
ACTIVE_SUBMISSION_STATES = (
    SubmissionState.PENDING,
    SubmissionState.DELIVERED,
    SubmissionState.UNCONFIRMED,
)
_ACTIVE_SUBMISSION = text("state IN ('pending', 'delivered', 'unconfirmed')")


class OutboxColumns:
    """What every outbox row carries for the dispatcher (panel_core/outbox).

    A row is claimed by writing a lease (owner and expiry) in one short transaction; the
    external call is made outside any transaction, and only the lease's owner may write its
    outcome. A claimant that dies leaves a lease that simply runs out.
    """

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    leased_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    # The HTTP request that queued the row, so that the log lines of its delivery (often in
    # another process) can be found from the request.
    request_id: Mapped[str | None] = mapped_column(String(64))


class Case(Base):
    __tablename__ = "case_file"
    # The staff case list (panel_core/cases/search.py) always shows newest first: each filter
    # column leads an index that ends in the list's order, so a filtered page is read off one
    # index without sorting, and a bare filter uses the same index. created_at, id is the
    # order itself (id breaks ties, so pages never overlap).
    __table_args__ = (
        Index("ix_case_file_status_created_at", "status", "created_at", "id"),
        Index("ix_case_file_case_type_created_at", "case_type", "created_at", "id"),
        Index("ix_case_file_channel_created_at", "channel", "created_at", "id"),
        Index("ix_case_file_created_at", "created_at", "id"),
        # The unique index serves a prefix LIKE only under the C collation; this one under any.
        Index(
            "ix_case_file_case_number_prefix",
            "case_number",
            postgresql_ops={"case_number": "varchar_pattern_ops"},
        ),
        # The retention job's queue: closed cases whose purge is due and not yet done.
        Index(
            "ix_case_file_purge_due",
            "purge_after",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    case_type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(64))
    # Why the case has its status, as the model gave it (statusReason); participants see it
    # only where the case-type descriptor's status allows (showReason).
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The version of the case type's descriptor the case was opened with: its texts are the
    # ones the case keeps showing, whatever is deployed later.
    descriptor_version: Mapped[int | None] = mapped_column(Integer)
    # The BPMN process that runs the case, and its instance once the engine started it.
    process_id: Mapped[str | None] = mapped_column(String(255))
    process_instance_key: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when the case closes (a final status, or its process ends without one), with what
    # the descriptor's afterClosure rule for that outcome makes of it: until when its
    # participants may sign in, what they see then, and when its personal data is purged.
    closed_at: Mapped[datetime | None]
    access_until: Mapped[datetime | None]
    access_shows: Mapped[str | None] = mapped_column(String(16))
    purge_after: Mapped[datetime | None]
    # The kinds of data (case_types.PURGEABLE) the purge removes.
    purge_kinds: Mapped[list[str] | None] = mapped_column(JSON)
    purged_at: Mapped[datetime | None]

    participants: Mapped[list[Participant]] = relationship(
        back_populates="case", order_by="Participant.ordinal"
    )


class Participant(Base):
    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("case_id", "ordinal"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    # Position among the case's participants: 0 is the primary borrower; it labels the
    # participant to the others ("Co-borrower 1") without revealing who they are.
    ordinal: Mapped[int] = mapped_column(Integer)
    # Where the invitation and one-time codes go; typed in by the bank, never by the person
    # logging in.
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    # Keyed hash of the PESEL fragment login asks for (see panel_core/identity/pesel.py); the
    # panel never stores the PESEL itself.
    pesel_fragment_hash: Mapped[str | None] = mapped_column(String(64))
    # Keyed blind indexes of the whole PESEL and of the phone number, which staff search by
    # (panel_core/identity/pesel.py, phone.py). NULL for participants registered before them.
    pesel_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    # Where e-mail notifications and documents sent securely go; optional, typed in by the
    # bank like the phone number, and purged with it (the "phones" kind).
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="pl")
    invited_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="participants")


class FormDefinition(Base):
    """A Camunda Form as deployed to the engine, keyed by the engine's form key."""

    __tablename__ = "form_definition"

    form_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    form_id: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    schema: Mapped[dict[str, Any]]
    # Why the panel cannot serve this form (expressions or components it cannot honour), for
    # forms deployed around ``customer-panel deploy``, e.g. straight from Camunda Modeler.
    problems: Mapped[list[str]] = mapped_column(default=list)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessDefinition(Base):
    """A deployed BPMN process version; the panel reads its element names from it."""

    __tablename__ = "process_definition"

    process_definition_key: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    bpmn_process_id: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    element_names: Mapped[dict[str, Any]]
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PanelTask(Base):
    """One Camunda user task as the panel shows it; the form schema is pinned at creation."""

    __tablename__ = "panel_task"
    __table_args__ = (
        # Staff inboxes: open tasks of one assignee, or open unassigned ones (assignee NULL).
        Index("ix_panel_task_state_assignee", "state", "assignee"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_task_key: Mapped[int] = mapped_column(BigInteger, unique=True)
    process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    element_instance_key: Mapped[int] = mapped_column(BigInteger)
    bpmn_process_id: Mapped[str] = mapped_column(String(255))
    element_id: Mapped[str] = mapped_column(String(255))
    # The element's name in the BPMN model, as the participant reads it.
    name: Mapped[str] = mapped_column(String(255))
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    # Set when the assignee is a participant of the case; staff tasks have None.
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    assignee: Mapped[str | None] = mapped_column(String(255))
    candidate_groups: Mapped[list[str]] = mapped_column(default=list)
    candidate_users: Mapped[list[str]] = mapped_column(default=list)
    form_id: Mapped[str | None] = mapped_column(String(255))
    form_key: Mapped[int | None] = mapped_column(BigInteger)
    form_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    due_date: Mapped[datetime | None]
    follow_up_date: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(Integer, default=50)
    state: Mapped[TaskState] = mapped_column(
        text_enum(TaskState),
        default=TaskState.OPEN,
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    # The log position of the newest engine record applied to the task.
    engine_position: Mapped[int] = mapped_column(BigInteger, default=0)
    # The position of the record that last set each attribute, by the engine's attribute
    # name ("assignee", "priority", ...): a record delivered again or late must neither undo
    # a newer change of an attribute nor be lost because a newer record changed another.
    engine_attribute_positions: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PanelTaskCandidateGroup(Base):
    """A candidate group of a task the engine has not ended: what the inboxes search.

    ``panel_task.candidate_groups`` keeps the list for display; a JSON list cannot be searched
    through a B-tree index, and these rows can: "open tasks offered to any of my groups" is
    one range scan of the primary key per group, over open tasks only, as a task's rows go
    when the engine ends it.
    """

    __tablename__ = "panel_task_candidate_group"

    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    panel_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("panel_task.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TaskSubmission(OutboxColumns, Base):
    """A completion as the participant submitted it, stored before the engine is called.

    Every attempt stays on record: a completion the engine refused keeps its row when the
    participant sends the task again.
    """

    __tablename__ = "task_submission"
    __table_args__ = (
        Index(
            "uq_task_submission_active",
            "panel_task_id",
            unique=True,
            postgresql_where=_ACTIVE_SUBMISSION,
            sqlite_where=_ACTIVE_SUBMISSION,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    panel_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("panel_task.id", ondelete="CASCADE"), index=True
    )
    user_task_key: Mapped[int] = mapped_column(BigInteger)
    # Everything the participant answered; it stays in the panel.
    answers: Mapped[dict[str, Any]]
    # The part of the answers the process needs, sent with the completion.
    variables: Mapped[dict[str, Any]]
    submitted_by: Mapped[str] = mapped_column(String(255))
    # The member of staff who completed it with the participant on the phone (assisted
    # mode, ``staff:<username>``); None when the participant sent it themselves.
    assisted_by: Mapped[str | None] = mapped_column(String(255))
    # The deployed form version the answers were given in: the task's own, or the variant
    # the descriptor gives for the channel (``formVariants``).
    form_key: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[SubmissionState] = mapped_column(
        text_enum(SubmissionState),
        default=SubmissionState.PENDING,
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only record of security-relevant events, for staff to read.

    Rows are only ever inserted (``panel_core/audit/log.py``); nothing updates or deletes them
    except the retention purge.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    case_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    participant_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # Who acted: "participant", "staff" or "system" (a worker on the engine's behalf).
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    # A member of staff: the identity provider's id of the person and their name then.
    staff_id: Mapped[str | None] = mapped_column(String(255), index=True)
    staff_name: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SmsState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    # The provider refused the message for good (e.g. an invalid number) or every attempt
    # failed; an operator looks at last_error.
    FAILED = "failed"


class SmsMessage(OutboxColumns, Base):
    """The SMS outbox: a message is stored first and sent by the dispatcher with retries."""

    __tablename__ = "sms_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Callers name the message ("invitation:<participant>") so a repeated request queues
    # nothing new.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    phone_e164: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(8))
    # Bodies carry one-time codes: cleared as soon as the message is sent or given up.
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[SmsState] = mapped_column(
        text_enum(SmsState),
        default=SmsState.PENDING,
        index=True,
    )
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class EmailState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    # The relay refused the message for good (an unknown mailbox, a message too large) or
    # every attempt failed; an operator looks at last_error.
    FAILED = "failed"


class EmailMessage(OutboxColumns, Base):
    """The e-mail outbox: a message is stored whole (its attachment too) and sent by the
    dispatcher with retries; what it carries is cleared once it is sent or given up."""

    __tablename__ = "email_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Named by the caller, so a repeated request queues nothing new.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    # A document sent securely: the password-protected PDF, never the password.
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    attachment_type: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[EmailState] = mapped_column(
        text_enum(EmailState),
        default=EmailState.PENDING,
        index=True,
    )
    # The Message-ID every attempt carries, so a copy delivered twice is one message to a
    # mail client.
    message_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class TaskDraft(Base):
    """What a participant or a member of staff typed into a task but has not sent yet, kept
    across devices."""

    __tablename__ = "task_draft"

    panel_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("panel_task.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    # The member of staff (username) whose draft it is, for a staff task.
    staff_username: Mapped[str | None] = mapped_column(String(255))
    # The raw form values as typed, so even invalid input comes back exactly as it was.
    answers: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsentRecord(Base):
    """A consent given: who, when, in which task, and the exact text with its SHA-256."""

    __tablename__ = "consent_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    panel_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("panel_task.id", ondelete="CASCADE")
    )
    consent_key: Mapped[str] = mapped_column(String(255))
    # The deployed form version the text came from.
    form_key: Mapped[int | None] = mapped_column(BigInteger)
    # The member of staff the participant gave it through, on the phone (assisted mode,
    # where the case type allows it); None when given in the panel.
    assisted_by: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseTypeDescriptor(Base):
    """The descriptor of a case type as last deployed (panel_core/cases/case_types.py)."""

    __tablename__ = "case_type_descriptor"

    case_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    descriptor: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    # The newest of its versions (case_type_descriptor_version), and the process version it
    # was deployed with.
    version: Mapped[int] = mapped_column(Integer, default=1)
    process_version: Mapped[int | None] = mapped_column(Integer)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CaseTypeDescriptorVersion(Base):
    """Every deployed version of a descriptor: a running case keeps the one it opened with."""

    __tablename__ = "case_type_descriptor_version"

    case_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    descriptor: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    process_version: Mapped[int | None] = mapped_column(Integer)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentState(enum.StrEnum):
    UPLOADED = "uploaded"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    # Taken back by the participant before the task was sent; the file is deleted.
    REMOVED = "removed"
    # Rejected, and the participant sent a new one in its place; the file stays, the bank's
    # record of what it rejected.
    REPLACED = "replaced"


class Document(Base):
    """A file a participant uploaded; the engine only ever sees its id."""

    __tablename__ = "document"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    panel_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("panel_task.id", ondelete="SET NULL"), index=True
    )
    # The form field (filepicker key) the file answers, which names the document type.
    field_key: Mapped[str] = mapped_column(String(255))
    # Generated name in the storage; the participant's file name is never used as a path.
    storage_key: Mapped[str] = mapped_column(String(128), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    # Detected from the content (magic bytes), not taken from the browser.
    media_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[DocumentState] = mapped_column(
        text_enum(DocumentState),
        default=DocumentState.UPLOADED,
        index=True,
    )
    # Why the bank rejected it, shown to the participant.
    review_note: Mapped[str | None] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None]
    # The rejected document this one was sent in place of.
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("document.id", ondelete="SET NULL"), index=True
    )


class SignatureRecord(Base):
    """A document signed with a one-time SMS code bound to the document's SHA-256.

    It keeps the exact bytes that were signed, so the bank can always show what the person
    signed, whatever later happens to the answers, the translations or the page. Rows are
    never updated (on PostgreSQL a trigger refuses it); a task sent again after a refusal is
    signed again, in a row of its own.
    """

    __tablename__ = "signature_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    panel_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("panel_task.id", ondelete="CASCADE"), index=True
    )
    # The submission the signature was sent with.
    submission_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("task_submission.id", ondelete="SET NULL"), index=True
    )
    # Set in the transaction that stores both, so the submission is written first.
    submission: Mapped[TaskSubmission | None] = relationship(lazy="raise")
    document_name: Mapped[str] = mapped_column(String(255))
    document_sha256: Mapped[str] = mapped_column(String(64))
    # The signed bytes themselves; their SHA-256 is document_sha256.
    content: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    # How the signer was verified: the SMS code's purpose and the number it went to (masked).
    verification: Mapped[dict[str, Any]]
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineScope(Base):
    """Where an element instance sits: the scope its variables are looked up in next.

    Kept only for the elements a form's variables can come from (user tasks, sub-processes,
    multi-instance bodies) while their process instance runs. The process instance's own
    row stays when it ends, marked ``ended``, so a record delivered again after that cannot
    bring its variables back.
    """

    __tablename__ = "engine_scope"

    element_instance_key: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    flow_scope_key: Mapped[int] = mapped_column(BigInteger)
    process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    ended: Mapped[bool] = mapped_column(default=False)


class EngineVariable(Base):
    """A process variable as the engine last exported it, while its process instance runs."""

    __tablename__ = "engine_variable"

    scope_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    value: Mapped[Any] = mapped_column(JSON(none_as_null=False), nullable=True)
    # The record's log position: a record delivered again never overwrites a newer value.
    position: Mapped[int] = mapped_column(BigInteger)


class CommandState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    # The engine refused the command for good; an operator looks at last_error.
    FAILED = "failed"


class EngineCommandKind(enum.StrEnum):
    START_PROCESS = "start-process"
    # A second process instance of one case (a start whose answer was lost and was sent
    # again) is cancelled: a case has exactly one instance.
    CANCEL_INSTANCE = "cancel-instance"


class EngineCommand(OutboxColumns, Base):
    """A command for the engine, stored in the transaction that decided it, sent later."""

    __tablename__ = "engine_command"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # "start:<case id>", "cancel:<process instance key>": the same command is queued once.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[EngineCommandKind] = mapped_column(text_enum(EngineCommandKind, length=32))
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    process_id: Mapped[str | None] = mapped_column(String(255))
    process_instance_key: Mapped[int | None] = mapped_column(BigInteger)
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[CommandState] = mapped_column(
        text_enum(CommandState),
        default=CommandState.PENDING,
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class ChannelRequest(Base):
    """An ``Idempotency-Key`` a channel sent with a request to open a case."""

    __tablename__ = "channel_request"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Keyed hash of the request body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineTaskEnd(Base):
    """That the engine ended a user task, kept even if the task is not (yet) in the panel.

    Records of different streams and batches can overtake one another: a CANCELED may be
    applied while the CREATED it follows is still waiting for its form. The CREATED then
    finds the end here and records the task as already ended, never as open.
    """

    __tablename__ = "engine_task_end"

    user_task_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16))
    ended_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActivityEvent(Base):
    """What participants may know of what happened in their case: the feed on the overview.

    Kept apart from the audit log: it names participants by role and the bank as "the bank",
    never a member of staff, and carries nothing a participant could not see.
    """

    __tablename__ = "activity_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    # The participant who acted; None for the bank.
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SavedFilter(Base):
    """A task-inbox filter a member of staff saved, for themselves or for a team."""

    __tablename__ = "staff_saved_filter"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The owner's username.
    owner: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # Shared with the members of this group (one of the owner's); None: the owner's only.
    team: Mapped[str | None] = mapped_column(String(255), index=True)
    query: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffNote(Base):
    """A note of staff on a case or on a customer (their PESEL's blind index), never shown to
    participants. Its author may correct it for a short while; after that it stands, and
    what follows is a new note."""

    __tablename__ = "staff_note"
    __table_args__ = (
        Index("ix_staff_note_case", "case_id", "created_at"),
        Index("ix_staff_note_customer", "customer_index", "created_at"),
        CheckConstraint(
            "(case_id IS NULL) <> (customer_index IS NULL)", name="ck_staff_note_one_subject"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Exactly one of these: the case, or the customer across their cases.
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE")
    )
    customer_index: Mapped[str | None] = mapped_column(String(64))
    author_subject: Mapped[str] = mapped_column(String(255))
    author_username: Mapped[str] = mapped_column(String(255))
    author_name: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]


class ProcessInstanceState(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    # Cancelled, or ended by a terminating event.
    TERMINATED = "terminated"


class EngineProcessInstance(Base):
    """A process instance as the engine reported it, kept after it ended for the case pages.

    A call activity's child is a row of its own under its parent's key, and every row names
    the root instance of its call chain, so a case's whole tree is one lookup. Whether an
    instance has an open incident is read from ``engine_incident``, never counted here: a
    count kept in step with incident records delivered at least once and out of order would
    need the very per-incident state that table keeps already.
    """

    __tablename__ = "engine_process_instance"

    process_instance_key: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    bpmn_process_id: Mapped[str] = mapped_column(String(255))
    process_definition_key: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    # The instance that called this one, and its call activity's element instance.
    parent_process_instance_key: Mapped[int | None] = mapped_column(BigInteger, index=True)
    parent_element_instance_key: Mapped[int | None] = mapped_column(BigInteger)
    root_process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    state: Mapped[ProcessInstanceState] = mapped_column(
        text_enum(ProcessInstanceState), default=ProcessInstanceState.ACTIVE, index=True
    )
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # The record the process definition columns come from (a migration changes them).
    position: Mapped[int] = mapped_column(BigInteger)


class IncidentState(enum.StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"


class EngineIncident(Base):
    """A failed automatic step as the engine reported it: a job out of retries, an
    expression that could not be evaluated, ...

    Kept after it is resolved. A resolution applied before the creation it follows leaves a
    resolved incident: ``resolved`` is final, whatever record comes after.
    """

    __tablename__ = "engine_incident"
    __table_args__ = (
        # The dashboard's failed steps: active incidents, newest first.
        Index("ix_engine_incident_state_created_at", "state", "created_at"),
        # A case page: its instances' incidents, and whether any is open.
        Index("ix_engine_incident_root_state", "root_process_instance_key", "state"),
    )

    incident_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    root_process_instance_key: Mapped[int] = mapped_column(BigInteger)
    bpmn_process_id: Mapped[str] = mapped_column(String(255))
    process_definition_key: Mapped[int] = mapped_column(BigInteger)
    element_id: Mapped[str] = mapped_column(String(255))
    element_instance_key: Mapped[int] = mapped_column(BigInteger)
    # The job that ran out of retries, for incidents of jobs.
    job_key: Mapped[int | None] = mapped_column(BigInteger)
    error_type: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str] = mapped_column(Text)
    state: Mapped[IncidentState] = mapped_column(
        text_enum(IncidentState), default=IncidentState.ACTIVE
    )
    # None while only the incident's resolution has been applied.
    created_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # The record the descriptive columns come from (a migration changes them).
    position: Mapped[int] = mapped_column(BigInteger)


class AppointmentKind(enum.StrEnum):
    # At a branch: the appointment's place is the branch's address.
    BRANCH = "branch"
    # The bank calls the participant.
    PHONE = "phone"


class AppointmentState(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


_REMINDER_DUE = text("reminded_at IS NULL AND state = 'scheduled'")


class Appointment(Base):
    """A participant's appointment with the bank (panel_core/appointments).

    Times are stored in UTC; staff type and everyone reads them in Europe/Warsaw.
    """

    __tablename__ = "appointment"
    __table_args__ = (
        # A calendar: the appointments one member of staff holds, in a range of time.
        Index("ix_appointment_holder_starts_at", "staff_username", "starts_at"),
        # The reminder job's queue: scheduled appointments whose reminder has not gone.
        Index(
            "ix_appointment_reminder_due",
            "remind_at",
            postgresql_where=_REMINDER_DUE,
            sqlite_where=_REMINDER_DUE,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[AppointmentKind] = mapped_column(text_enum(AppointmentKind))
    state: Mapped[AppointmentState] = mapped_column(
        text_enum(AppointmentState), default=AppointmentState.SCHEDULED
    )
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # A branch visit's address.
    place: Mapped[str | None] = mapped_column(Text)
    # The number the bank calls; None: the participant's own number, which the bank has.
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    # What it is about, as the participant reads it.
    subject: Mapped[str] = mapped_column(String(200))
    # The member of staff whose calendar it is in, and who booked it.
    staff_username: Mapped[str] = mapped_column(String(255))
    staff_name: Mapped[str] = mapped_column(String(255))
    booked_by: Mapped[str] = mapped_column(String(255))
    # Counts the changes the participant was told of: the calendar file's SEQUENCE, and part
    # of each SMS's idempotency key, so a new time gets its own messages.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # When the reminder SMS is due (the day before); None when the appointment was booked too
    # late for one.
    remind_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    cancelled_at: Mapped[datetime | None]


_REQUEST_OPEN = text("resolved_at IS NULL")


class AppointmentChangeRequest(Base):
    """A participant's request to move an appointment, until the bank reschedules or
    cancels it. One open request per appointment; answered ones stay on record."""

    __tablename__ = "appointment_change_request"
    __table_args__ = (
        Index(
            "uq_appointment_change_request_open",
            "appointment_id",
            unique=True,
            postgresql_where=_REQUEST_OPEN,
            sqlite_where=_REQUEST_OPEN,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    message: Mapped[str] = mapped_column(Text)
    # When the participant could come instead, in their own words.
    preferred: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    # "rescheduled" or "cancelled", and the member of staff who did it.
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(255))


class StaffGroupMember(Base):
    """The identity provider's groups of a member of staff as of their last sign-in: whose
    appointments and tasks a team manager's calendar shows (the members of their groups)."""

    __tablename__ = "staff_group_member"

    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineJob(Base):
    """A job that has failed at least once, with the retries it has left as the engine last
    reported them (its ``FAILED`` and ``RETRIES_UPDATED`` records), for the dashboard's
    failed steps: Zeebe 8.6 answers no job query without Operate.

    A job that ends (completed, cancelled, an error thrown) is deleted: only an open incident
    reads this table, and a job with an open incident has not ended. A record of the job
    applied late, after its end, leaves a row no open incident refers to.
    """

    __tablename__ = "engine_job"

    job_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    process_instance_key: Mapped[int] = mapped_column(BigInteger, index=True)
    element_instance_key: Mapped[int] = mapped_column(BigInteger)
    job_type: Mapped[str] = mapped_column(String(255))
    retries: Mapped[int] = mapped_column(Integer)
    # The record the columns come from: an older record never overwrites a newer one.
    position: Mapped[int] = mapped_column(BigInteger)


class ConversationState(enum.StrEnum):
    # Waiting in its team's queue, or with the member of staff who took it.
    OPEN = "open"
    CLOSED = "closed"


class ConversationResolution(enum.StrEnum):
    # An entry of the case type's FAQ answered the question: no employee was needed.
    FAQ = "faq"
    # The bank answered.
    BANK = "bank"


class Conversation(Base):
    """A participant's conversation with the bank about their case, from the Messages area
    or from a task page (then about that task). Only that participant and the staff see it."""

    __tablename__ = "conversation"
    __table_args__ = (
        Index("ix_conversation_queue", "state", "team", "last_message_at"),
        Index("ix_conversation_participant", "participant_id", "last_message_at"),
        Index("ix_conversation_assignee", "assignee_username", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    # The task it was started from ("Ask about this step").
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("panel_task.id", ondelete="SET NULL")
    )
    # The staff group whose queue it is in.
    team: Mapped[str] = mapped_column(String(255))
    assignee_subject: Mapped[str | None] = mapped_column(String(255))
    assignee_username: Mapped[str | None] = mapped_column(String(255))
    assignee_name: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[ConversationState] = mapped_column(
        text_enum(ConversationState), default=ConversationState.OPEN
    )
    resolution: Mapped[ConversationResolution | None] = mapped_column(
        text_enum(ConversationResolution)
    )
    # The FAQ entry (its position in the descriptor's list) that answered it.
    faq_entry: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_participant_message_at: Mapped[datetime | None]
    last_staff_message_at: Mapped[datetime | None]
    # Up to when each side has read it.
    participant_read_at: Mapped[datetime | None]
    staff_read_at: Mapped[datetime | None]
    # The last "you have a new message" SMS to the participant.
    away_sms_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class MessageAuthor(enum.StrEnum):
    PARTICIPANT = "participant"
    STAFF = "staff"
    # The panel's own entry: the FAQ answer that resolved the question.
    PANEL = "panel"


class ConversationMessage(Base):
    """One message of a conversation: plain text, as typed."""

    __tablename__ = "conversation_message"
    __table_args__ = (Index("ix_conversation_message_thread", "conversation_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE")
    )
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("case_file.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[MessageAuthor] = mapped_column(text_enum(MessageAuthor))
    staff_subject: Mapped[str | None] = mapped_column(String(255))
    staff_username: Mapped[str | None] = mapped_column(String(255))
    staff_name: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedAnswer(Base):
    """A ready answer staff insert into a conversation, per case type and language; team
    managers keep them."""

    __tablename__ = "canned_answer"
    __table_args__ = (Index("ix_canned_answer_type", "case_type", "locale"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_type: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
