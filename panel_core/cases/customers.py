"""The customer card: one person's cases of every type and channel, running and finished.

A customer is recognised across cases by the keyed blind index of their PESEL
(``participant.pesel_index``), made by the same function as at registration; the panel keeps
no PESEL. A participant whose index was purged (retention) is a customer of one case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases import case_types
from panel_core.cases.case_types import status_label
from panel_core.cases.view import mask_phone
from panel_core.db.models import Case, Participant
from panel_core.i18n import pick

# The most cases one card lists; a person with more is shown the newest.
CARD_LIMIT = 200


@dataclass(frozen=True, slots=True)
class CustomerCase:
    case: Case
    participant: Participant
    case_type_name: str
    role: str
    status_label: str
    channel: str
    final: bool


@dataclass(frozen=True, slots=True)
class CustomerCard:
    # The participant the card was opened from (its link names it, never the index).
    participant_id: uuid.UUID
    # None once the PESEL's index was purged: the card then knows this one case only.
    customer_index: str | None
    phone: str
    cases: list[CustomerCase]


async def customer_card(session: AsyncSession, participant_id: uuid.UUID) -> CustomerCard | None:
    """The card of the customer this participant is; None for no such participant."""
    person = await session.get(Participant, participant_id)
    if person is None:
        return None
    same = (
        Participant.pesel_index == person.pesel_index
        if person.pesel_index is not None
        else Participant.id == person.id
    )
    rows = await session.execute(
        select(Participant, Case)
        .join(Case, Case.id == Participant.case_id)
        .where(same)
        .order_by(Case.created_at.desc(), Case.id)
        .limit(CARD_LIMIT)
    )
    cases = []
    for participant, case in rows:
        descriptor = await case_types.of_case(session, case)
        everyone = await session.scalars(select(Participant).where(Participant.case_id == case.id))
        role = descriptor.role_names(everyone).get(participant.id, participant.role)
        entry = descriptor.statuses.get(case.status)
        cases.append(
            CustomerCase(
                case=case,
                participant=participant,
                case_type_name=pick(descriptor.name) or case.case_type,
                role=role,
                status_label=status_label(descriptor, case.status),
                channel=descriptor.channel_name(case.channel),
                final=bool(entry and entry.final),
            )
        )
    return CustomerCard(
        participant_id=person.id,
        customer_index=person.pesel_index,
        phone=mask_phone(person.phone_e164),
        cases=cases,
    )
