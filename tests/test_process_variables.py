"""Privacy by design: the engine learns ids and roles, never personal data."""

from __future__ import annotations

import uuid

from panel_core import constants as c
from panel_core.cases.service import process_variables
from panel_core.db.models import Case, Participant
from tests import credit


def test_variables_hold_only_ids_and_roles() -> None:
    case = Case(id=uuid.uuid4(), case_number="KR-2026-00000000", case_type=credit.CASE_TYPE_CREDIT)
    case.participants = [
        Participant(id=uuid.uuid4(), role=credit.ROLE_PRIMARY_BORROWER, ordinal=0),
        Participant(id=uuid.uuid4(), role=credit.ROLE_CO_BORROWER, ordinal=1),
    ]
    variables = process_variables(case)
    assert set(variables) == {c.VAR_CASE_ID, c.VAR_CASE_NUMBER, c.VAR_PARTICIPANTS}
    assert variables[c.VAR_PARTICIPANTS] == [
        {c.KEY_PARTICIPANT_ID: str(p.id), c.KEY_ROLE: p.role} for p in case.participants
    ]
