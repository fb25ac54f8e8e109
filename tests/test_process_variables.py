"""Privacy by design: the engine learns ids and roles, never personal data."""

from __future__ import annotations

import uuid

from panel_core import constants as c
from panel_core.cases.service import CaseValidationError, process_variables, validate_request
from panel_core.db.models import Case, Participant


def test_variables_hold_only_ids_and_roles() -> None:
    case = Case(id=uuid.uuid4(), case_number="KR-2026-00000000", case_type=c.CASE_TYPE_CREDIT)
    case.participants = [
        Participant(id=uuid.uuid4(), role=c.ROLE_PRIMARY_BORROWER, ordinal=0),
        Participant(id=uuid.uuid4(), role=c.ROLE_CO_BORROWER, ordinal=1),
    ]
    variables = process_variables(case)
    assert set(variables) == {c.VAR_CASE_ID, c.VAR_CASE_NUMBER, c.VAR_PARTICIPANTS}
    assert variables[c.VAR_PARTICIPANTS] == [
        {c.KEY_PARTICIPANT_ID: str(p.id), c.KEY_ROLE: p.role} for p in case.participants
    ]


def test_a_credit_case_needs_exactly_one_primary_borrower() -> None:
    for roles in ([], [c.ROLE_CO_BORROWER], [c.ROLE_PRIMARY_BORROWER] * 2):
        try:
            validate_request(c.CASE_TYPE_CREDIT, roles, "branch")
        except CaseValidationError:
            continue
        raise AssertionError(f"{roles} was accepted")
    validate_request(c.CASE_TYPE_CREDIT, [c.ROLE_PRIMARY_BORROWER, c.ROLE_CO_BORROWER], "branch")
