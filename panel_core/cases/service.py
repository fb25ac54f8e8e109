"""Opening a case and binding it to its process instance: the same path for every channel."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from panel_core import constants as c
from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.cases import case_types, closure
from panel_core.cases.case_types import Descriptor
from panel_core.cases.numbers import generate_case_number
from panel_core.db.models import (
    ACTIVE_SUBMISSION_STATES,
    Case,
    ChannelRequest,
    EngineCommand,
    EngineCommandKind,
    PanelTask,
    Participant,
    TaskSubmission,
    utcnow,
)
from panel_core.engine.commands import cancel_key, enqueue_command, start_key
from panel_core.i18n import DEFAULT_LOCALE, pick, supported
from panel_core.identity.email_address import EmailAddressError, normalize_email
from panel_core.identity.pesel import (
    PeselError,
    fragment_hash,
    fragment_of,
    pesel_index,
    validate_pesel,
)
from panel_core.identity.phone import PhoneError, normalize_phone, phone_index
from panel_core.metrics import DUPLICATE_INSTANCES
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.outbox.dispatcher import AfterCommit, Lease

log = logging.getLogger(__name__)


class CaseValidationError(ValueError):
    """The request to open a case is malformed; the message is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class ParticipantRegistration:
    """A participant as a channel registers them. The PESEL is validated and dropped."""

    role: str
    pesel: str
    phone: str
    locale: str = "pl"
    # Optional: where e-mail notifications and documents sent securely go.
    email: str = ""


@dataclass(frozen=True, slots=True)
class _Checked:
    role: str
    fragment: str
    phone_e164: str
    locale: str
    email: str | None
    # Blind indexes staff search by (panel_core/cases/search.py); the PESEL goes no further.
    pesel_index: str
    phone_index: str


LOCALES = frozenset({"pl", "en"})


@dataclass(frozen=True, slots=True)
class OpenedCase:
    case_id: uuid.UUID
    case_number: str
    participants: list[tuple[uuid.UUID, str]]
    # The command that starts the case's process; None for a replayed request.
    start_command_id: uuid.UUID | None
    # Known once the engine has started the process (at once, or later from the outbox).
    process_instance_key: int | None = None
    # True when an earlier request with the same idempotency key opened this case.
    replayed: bool = False


class IdempotencyConflictError(ValueError):
    """The idempotency key was used before for a different request."""


def check_participants(
    participants: list[ParticipantRegistration], fragment_length: int, *, hash_key: str
) -> list[_Checked]:
    checked: list[_Checked] = []
    for number, p in enumerate(participants, start=1):
        try:
            pesel = validate_pesel(p.pesel)
            phone = normalize_phone(p.phone)
            email = normalize_email(p.email) if p.email.strip() else None
        except (PeselError, PhoneError, EmailAddressError) as exc:
            raise CaseValidationError(f"Participant {number}: {exc}") from exc
        if p.locale not in LOCALES:
            raise CaseValidationError(
                f"Participant {number}: language must be one of {', '.join(sorted(LOCALES))}."
            )
        checked.append(
            _Checked(
                p.role,
                fragment_of(pesel, fragment_length),
                phone,
                p.locale,
                email,
                pesel_index=pesel_index(hash_key, pesel),
                phone_index=phone_index(hash_key, phone),
            )
        )
    fragments = [c.fragment for c in checked]
    if len(set(fragments)) != len(fragments):
        # Login tells participants of a case apart by this fragment alone.
        raise CaseValidationError(
            "Two participants' PESEL numbers end in the same digits, so login could not tell "
            "them apart; register them in separate cases or contact support."
        )
    return checked


def validate_request(descriptor: Descriptor, roles: list[str], channel: str) -> None:
    """The case type's own rules, from its descriptor: channels, roles and their counts."""
    if channel not in descriptor.channels:
        raise CaseValidationError(
            f"Unknown channel {channel!r} for {descriptor.case_type}; "
            f"one of: {', '.join(descriptor.channels)}."
        )
    problems = descriptor.participant_problems(roles)
    if problems:
        raise CaseValidationError(" ".join(problems))


def process_variables(case: Case) -> dict[str, Any]:
    """What the engine learns about a case: ids and roles, never personal data."""
    return {
        c.VAR_CASE_ID: str(case.id),
        c.VAR_CASE_NUMBER: case.case_number,
        c.VAR_PARTICIPANTS: [
            {c.KEY_PARTICIPANT_ID: str(p.id), c.KEY_ROLE: p.role} for p in case.participants
        ],
    }


def request_hash(
    hash_key: str, case_type: str, channel: str, participants: list[ParticipantRegistration]
) -> str:
    """Keyed fingerprint of a request to open a case (it carries PESEL numbers, so a plain
    hash would be open to guessing)."""
    body = json.dumps(
        # An address joins the fingerprint only when given, so a request without any keeps
        # the fingerprint it had before addresses existed.
        [
            case_type,
            channel,
            [
                [p.role, p.pesel, p.phone, p.locale, *([p.email] if p.email else [])]
                for p in participants
            ],
        ],
        separators=(",", ":"),
    )
    return hmac.new(
        hash_key.encode(), f"channel-request|{body}".encode(), hashlib.sha256
    ).hexdigest()


async def _replay(
    sessions: async_sessionmaker[AsyncSession], idempotency_key: str, fingerprint: str
) -> OpenedCase | None:
    async with sessions() as session:
        earlier = await session.get(ChannelRequest, idempotency_key)
        if earlier is None:
            return None
        if not hmac.compare_digest(earlier.request_hash, fingerprint):
            raise IdempotencyConflictError(idempotency_key)
        case = await get_case_with_participants(session, earlier.case_id)
        assert case is not None
        return OpenedCase(
            case_id=case.id,
            case_number=case.case_number,
            participants=[(p.id, p.role) for p in case.participants],
            start_command_id=None,
            process_instance_key=case.process_instance_key,
            replayed=True,
        )


async def open_case(
    sessions: async_sessionmaker[AsyncSession],
    *,
    case_type: str,
    participants: list[ParticipantRegistration],
    channel: str,
    case_number_prefix: str,
    hash_key: str,
    fragment_length: int,
    idempotency_key: str | None = None,
    start_lease: Lease | None = None,
) -> OpenedCase:
    """Register the case and its participants, with the command that starts its process.

    Everything is committed together, before the engine is asked: the channel has its case
    number at once, and the process variables carry the case id, so every job and record of
    the instance finds its case. The start itself leaves through the engine-command outbox.
    With an idempotency key, the same key and request give the same case, never a second one.
    With ``start_lease`` the caller starts the process itself right after (the
    engine-command outbox's ``deliver_leased``); the workers do if it cannot.
    """
    async with sessions() as session:
        found = await case_types.newest(session, case_type)
    if found is None:
        raise CaseValidationError(f"Unknown case type {case_type!r}.")
    descriptor, descriptor_version = found
    validate_request(descriptor, [p.role for p in participants], channel)
    checked = check_participants(participants, fragment_length, hash_key=hash_key)
    fingerprint = request_hash(hash_key, case_type, channel, participants)
    if idempotency_key is not None:
        replayed = await _replay(sessions, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
    # In the descriptor's order of roles, which is how the panel lists people.
    ordered = [checked[i] for i in descriptor.in_role_order(p.role for p in checked)]
    process_id = descriptor.process_id
    for _ in range(5):
        async with sessions() as session:
            case = Case(
                id=uuid.uuid4(),
                case_number=generate_case_number(
                    descriptor.case_number_prefix or case_number_prefix
                ),
                case_type=case_type,
                channel=channel,
                status=descriptor.first_status,
                descriptor_version=descriptor_version,
                process_id=process_id,
            )
            case.participants = [
                Participant(
                    id=uuid.uuid4(),
                    role=p.role,
                    ordinal=i,
                    phone_e164=p.phone_e164,
                    email=p.email,
                    locale=p.locale,
                    pesel_fragment_hash=fragment_hash(hash_key, case.id, p.fragment),
                    pesel_index=p.pesel_index,
                    phone_index=p.phone_index,
                )
                for i, p in enumerate(ordered)
            ]
            session.add(case)
            if idempotency_key is not None:
                session.add(
                    ChannelRequest(
                        idempotency_key=idempotency_key,
                        request_hash=fingerprint,
                        case_id=case.id,
                    )
                )
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                if idempotency_key is not None:
                    # A parallel request with the same key got there first.
                    replayed = await _replay(sessions, idempotency_key, fingerprint)
                    if replayed is not None:
                        return replayed
                continue  # case number collision; draw another
            command_id = await enqueue_command(
                session,
                idempotency_key=start_key(case.id),
                kind=EngineCommandKind.START_PROCESS,
                case_id=case.id,
                process_id=process_id,
                variables=process_variables(case),
                lease=start_lease,
            )
            audit.record(session, audit.CASE_OPENED, case_id=case.id, channel=channel)
            await session.commit()
            return OpenedCase(
                case_id=case.id,
                case_number=case.case_number,
                participants=[(p.id, p.role) for p in case.participants],
                start_command_id=command_id,
            )
    raise RuntimeError("Could not draw a free case number")


class Binding(enum.Enum):
    BOUND = "bound"
    # The case already runs in this instance.
    SAME = "same"
    # The case runs in another instance: this one is a second start of the same case and is
    # being cancelled.
    DUPLICATE = "duplicate"
    # An instance of another process (a call activity's child) carrying the case id.
    OTHER_PROCESS = "other-process"
    UNKNOWN_CASE = "unknown-case"


async def bind_instance(
    session: AsyncSession, case_id: uuid.UUID, process_instance_key: int, bpmn_process_id: str
) -> Binding:
    """Record which process instance runs the case; the first one reported wins.

    The engine's answer to the start, the instance's ``caseId`` variable record, its first
    user task and its jobs each report the instance, in whatever order they arrive. A start
    sent twice (its first answer lost) makes a second instance: that one is cancelled
    through the engine-command outbox, and its effects are ignored meanwhile.
    """
    case = await session.get(Case, case_id)
    if case is None:
        return Binding.UNKNOWN_CASE
    if case.process_id and bpmn_process_id != case.process_id:
        return Binding.OTHER_PROCESS
    if case.process_instance_key == process_instance_key:
        return Binding.SAME
    # Compare-and-set, so that two reports racing on one case cannot both bind it.
    result = await session.execute(
        update(Case)
        .where(Case.id == case_id, Case.process_instance_key.is_(None))
        .values(process_instance_key=process_instance_key)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        await session.refresh(case, ["process_instance_key"])
        return Binding.BOUND
    await session.refresh(case, ["process_instance_key"])
    if case.process_instance_key == process_instance_key:
        return Binding.SAME
    queued = await enqueue_command(
        session,
        idempotency_key=cancel_key(process_instance_key),
        kind=EngineCommandKind.CANCEL_INSTANCE,
        case_id=case_id,
        process_instance_key=process_instance_key,
    )
    if queued:
        DUPLICATE_INSTANCES.inc()
        log.warning(
            "case %s runs in process instance %s; cancelling its second instance %s",
            case_id,
            case.process_instance_key,
            process_instance_key,
        )
    return Binding.DUPLICATE


async def case_instance_started(
    session: AsyncSession, command: EngineCommand, process_instance_key: int
) -> AfterCommit:
    """The engine started a case's process (the engine-command outbox's ``on_started``)."""
    if command.case_id is not None and command.process_id is not None:
        binding = await bind_instance(
            session, command.case_id, process_instance_key, command.process_id
        )
        # With the request id and case id of the context: request, case and instance meet.
        log.info(
            "case %s: process instance %s started (%s)",
            command.case_id,
            process_instance_key,
            binding.value,
        )
    return None


async def get_case_with_participants(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    result = await session.execute(
        select(Case).where(Case.id == case_id).options(selectinload(Case.participants))
    )
    return result.scalar_one_or_none()


def case_link(base_url: str, case_number: str) -> str:
    """The login page with the case number filled in (no code: the participant asks anew)."""
    return f"{base_url.rstrip('/')}/login?{urlencode({'case': case_number})}"


async def set_case_status(
    session: AsyncSession,
    case_id: uuid.UUID,
    status: str,
    reason: str | None = None,
    *,
    base_url: str,
    at: datetime | None = None,
    bank_texts: Mapping[str, Mapping[str, str]] | None = None,
) -> bool:
    """Record the case's business status and the reason the model gave for it.

    Entering a final status of the case type also queues the decision SMS for every
    participant with a phone. Zeebe delivers jobs at least once and a model may set a status
    twice: each person's message has one key per case, so they get it once. A final status
    closes the case under its ``afterClosure`` rule (``closure``), from ``at`` (now).
    """
    case = await session.get(Case, case_id)
    if case is None:
        return False
    descriptor = await case_types.of_case(session, case)
    if status not in descriptor.statuses:
        raise CaseValidationError(
            f"Unknown case status {status!r} for {case.case_type}; the descriptor defines "
            f"{', '.join(descriptor.statuses) or 'none'}."
        )
    changed = case.status != status
    if changed:
        # The participants' activity feed shows the bank's steps from these events.
        audit.record(session, audit.CASE_STATUS_CHANGED, case_id=case.id, status=status)
        activity.record(session, activity.CASE_STATUS_CHANGED, case_id=case.id, status=status)
    case.status = status
    entry = descriptor.statuses.get(status)
    if not reason and entry is not None and entry.reason_answer:
        reason = await _answered_by_bank(session, case.id, entry.reason_answer)
    case.status_reason = reason or None
    if entry is not None and entry.final:
        if changed or case.closed_at is None:
            closure.close(case, descriptor.closure_rule(status), at or utcnow())
    elif case.closed_at is not None:
        closure.reopen(case)
    if changed and entry is not None and entry.final:
        await _queue_decision(session, case, entry, base_url, bank_texts)
    return True


async def _answered_by_bank(session: AsyncSession, case_id: uuid.UUID, key: str) -> str | None:
    """The answer to form field ``key`` in the case's latest completed bank task."""
    submissions = await session.scalars(
        select(TaskSubmission)
        .join(PanelTask, PanelTask.id == TaskSubmission.panel_task_id)
        .where(
            PanelTask.case_id == case_id,
            PanelTask.participant_id.is_(None),
            TaskSubmission.state.in_(ACTIVE_SUBMISSION_STATES),
        )
        .order_by(TaskSubmission.created_at.desc())
    )
    for submission in submissions:
        answer = (submission.answers or {}).get(key)
        if isinstance(answer, str) and answer.strip():
            return answer.strip()
    return None


async def _queue_decision(
    session: AsyncSession,
    case: Case,
    entry: case_types.Status,
    base_url: str,
    bank_texts: Mapping[str, Mapping[str, str]] | None,
) -> None:
    people = await session.scalars(
        select(Participant).where(Participant.case_id == case.id).order_by(Participant.ordinal)
    )
    queued = []
    for person in people:
        if not person.phone_e164:
            continue
        # The SMS template renders in the person's language; the descriptor's text must be
        # picked for the same one, not the language of whatever request or job runs this.
        locale = supported(person.locale) or DEFAULT_LOCALE
        fresh = await enqueue_sms(
            session,
            idempotency_key=f"{c.SMS_DECISION}:{case.id}:{person.id}",
            purpose=c.SMS_DECISION,
            phone_e164=person.phone_e164,
            locale=locale,
            context={
                "case_number": case.case_number,
                "decision": pick(entry.sms, locale),
                "link": case_link(base_url, case.case_number),
            },
            participant_id=person.id,
            case_id=case.id,
            bank_texts=bank_texts,
        )
        if fresh:
            queued.append(str(person.id))
    if queued:
        audit.record(
            session, audit.DECISION_SENT, case_id=case.id, status=case.status, participants=queued
        )
