"""Registering a case and starting its process: the same path for every channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from panel_core import audit
from panel_core import constants as c
from panel_core.auth.pesel import PeselError, fragment_hash, fragment_of, validate_pesel
from panel_core.auth.phone import PhoneError, normalize_phone
from panel_core.case_numbers import generate_case_number
from panel_core.db.models import Case, Participant
from panel_core.engine.rest import CamundaRestClient

# Which BPMN process implements each case type, and which roles it accepts.
CASE_TYPES: dict[str, str] = {c.CASE_TYPE_CREDIT: c.PROCESS_ID_CREDIT}
ROLES_BY_CASE_TYPE: dict[str, frozenset[str]] = {
    c.CASE_TYPE_CREDIT: frozenset({c.ROLE_PRIMARY_BORROWER, c.ROLE_CO_BORROWER}),
}
CHANNELS = frozenset({"branch", "internet-banking", "call-centre", "panel", "cli"})
MAX_PARTICIPANTS = 10


class CaseValidationError(ValueError):
    """The request to open a case is malformed; the message is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class ParticipantRegistration:
    """A participant as a channel registers them. The PESEL is validated and dropped."""

    role: str
    pesel: str
    phone: str
    locale: str = "pl"


@dataclass(frozen=True, slots=True)
class _Checked:
    role: str
    fragment: str
    phone_e164: str
    locale: str


LOCALES = frozenset({"pl", "en"})


@dataclass(frozen=True, slots=True)
class StartedCase:
    case_id: uuid.UUID
    case_number: str
    process_instance_key: int
    participants: list[tuple[uuid.UUID, str]]


def check_participants(
    participants: list[ParticipantRegistration], fragment_length: int
) -> list[_Checked]:
    checked: list[_Checked] = []
    for number, p in enumerate(participants, start=1):
        try:
            pesel = validate_pesel(p.pesel)
            phone = normalize_phone(p.phone)
        except (PeselError, PhoneError) as exc:
            raise CaseValidationError(f"Participant {number}: {exc}") from exc
        if p.locale not in LOCALES:
            raise CaseValidationError(
                f"Participant {number}: language must be one of {', '.join(sorted(LOCALES))}."
            )
        checked.append(_Checked(p.role, fragment_of(pesel, fragment_length), phone, p.locale))
    fragments = [c.fragment for c in checked]
    if len(set(fragments)) != len(fragments):
        # Login tells participants of a case apart by this fragment alone.
        raise CaseValidationError(
            "Two participants' PESEL numbers end in the same digits, so login could not tell "
            "them apart; register them in separate cases or contact support."
        )
    return checked


def validate_request(case_type: str, roles: list[str], channel: str) -> None:
    if case_type not in CASE_TYPES:
        raise CaseValidationError(f"Unknown case type {case_type!r}.")
    if channel not in CHANNELS:
        raise CaseValidationError(f"Unknown channel {channel!r}.")
    if not roles:
        raise CaseValidationError("A case needs at least one participant.")
    if len(roles) > MAX_PARTICIPANTS:
        raise CaseValidationError(f"A case takes at most {MAX_PARTICIPANTS} participants.")
    allowed = ROLES_BY_CASE_TYPE[case_type]
    unknown = sorted(set(roles) - allowed)
    if unknown:
        raise CaseValidationError(f"Unknown role(s) for {case_type}: {', '.join(unknown)}.")
    if case_type == c.CASE_TYPE_CREDIT and roles.count(c.ROLE_PRIMARY_BORROWER) != 1:
        raise CaseValidationError("A credit application has exactly one primary borrower.")


def process_variables(case: Case) -> dict[str, Any]:
    """What the engine learns about a case: ids and roles, never personal data."""
    return {
        c.VAR_CASE_ID: str(case.id),
        c.VAR_CASE_NUMBER: case.case_number,
        c.VAR_PARTICIPANTS: [
            {c.KEY_PARTICIPANT_ID: str(p.id), c.KEY_ROLE: p.role} for p in case.participants
        ],
    }


async def start_case(
    sessions: async_sessionmaker[AsyncSession],
    engine: CamundaRestClient,
    *,
    case_type: str,
    participants: list[ParticipantRegistration],
    channel: str,
    case_number_prefix: str,
    hash_key: str,
    fragment_length: int,
) -> StartedCase:
    """Register the case and its participants, then start the process instance.

    The case is committed only once the engine has accepted the instance, so a failed start
    leaves nothing half-made behind; the caller may simply try again.
    """
    validate_request(case_type, [p.role for p in participants], channel)
    checked = check_participants(participants, fragment_length)
    # The primary borrower first, so ordinals read "participant 0 = primary".
    ordered = sorted(checked, key=lambda p: p.role != c.ROLE_PRIMARY_BORROWER)
    for _ in range(5):
        async with sessions() as session:
            case = Case(
                id=uuid.uuid4(),
                case_number=generate_case_number(case_number_prefix),
                case_type=case_type,
                channel=channel,
                status=c.STATUS_COLLECTING,
            )
            case.participants = [
                Participant(
                    id=uuid.uuid4(),
                    role=p.role,
                    ordinal=i,
                    phone_e164=p.phone_e164,
                    locale=p.locale,
                    pesel_fragment_hash=fragment_hash(hash_key, case.id, p.fragment),
                )
                for i, p in enumerate(ordered)
            ]
            session.add(case)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                continue  # case number collision; draw another
            instance = await engine.create_process_instance(
                CASE_TYPES[case_type], process_variables(case)
            )
            case.process_instance_key = instance.process_instance_key
            await session.commit()
            return StartedCase(
                case_id=case.id,
                case_number=case.case_number,
                process_instance_key=instance.process_instance_key,
                participants=[(p.id, p.role) for p in case.participants],
            )
    raise RuntimeError("Could not draw a free case number")


async def get_case_with_participants(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    result = await session.execute(
        select(Case).where(Case.id == case_id).options(selectinload(Case.participants))
    )
    return result.scalar_one_or_none()


async def set_case_status(session: AsyncSession, case_id: uuid.UUID, status: str) -> bool:
    if status not in c.CASE_STATUSES:
        raise CaseValidationError(f"Unknown case status {status!r}.")
    case = await session.get(Case, case_id)
    if case is None:
        return False
    if case.status != status:
        # The participants' activity feed shows the bank's steps from these events.
        audit.record(session, audit.CASE_STATUS_CHANGED, case_id=case.id, status=status)
    case.status = status
    return True


async def case_type_of(session: AsyncSession, case_id: uuid.UUID) -> str:
    case_type = await session.scalar(select(Case.case_type).where(Case.id == case_id))
    return str(case_type or "")
