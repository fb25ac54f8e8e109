"""Reading answers against the project's real Camunda Forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panel_core.forms import input_components, read_submission
from tests import credit

FORMS = Path(__file__).resolve().parent.parent / "bpmn" / "credit-application" / "forms"


def form(form_id: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((FORMS / f"{form_id}.form").read_text())
    return schema


def test_every_shipped_form_has_the_id_its_constant_names() -> None:
    ids = {json.loads(p.read_text())["id"] for p in FORMS.glob("*.form")}
    assert ids == {
        credit.FORM_CONSENTS,
        credit.FORM_INCOME,
        credit.FORM_QUESTIONNAIRE,
        credit.FORM_ANALYST_REVIEW,
        credit.FORM_SIGNATURE,
        credit.FORM_QUESTIONNAIRE_PHONE,
    }


def test_valid_answers_are_converted_to_the_component_types() -> None:
    values, errors = read_submission(
        form(credit.FORM_INCOME),
        {"employmentType": "employed", "monthlyNetIncome": "8500,50", "employerName": " ACME "},
    )
    assert errors == {}
    assert values == {
        "employmentType": "employed",
        "monthlyNetIncome": 8500.5,
        "employerName": "ACME",
    }


def test_keys_outside_the_form_never_reach_the_engine() -> None:
    values, errors = read_submission(
        form(credit.FORM_CONSENTS),
        {"consentCreditCheck": "true", "consentDataProcessing": "on", "decision": "approved"},
    )
    assert errors == {}
    assert values == {"consentCreditCheck": True, "consentDataProcessing": True}


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"employmentType": "", "monthlyNetIncome": "1"}, "employmentType"),
        ({"employmentType": "astronaut", "monthlyNetIncome": "1"}, "employmentType"),
        ({"employmentType": "employed", "monthlyNetIncome": "-5"}, "monthlyNetIncome"),
        ({"employmentType": "employed", "monthlyNetIncome": "lots"}, "monthlyNetIncome"),
        ({"employmentType": "employed", "monthlyNetIncome": "NaN"}, "monthlyNetIncome"),
        (
            {"employmentType": "employed", "monthlyNetIncome": "1", "incomeNotes": "x" * 501},
            "incomeNotes",
        ),
    ],
)
def test_each_rule_breach_is_reported_at_its_field(answers: dict[str, str], field: str) -> None:
    _values, errors = read_submission(form(credit.FORM_INCOME), answers)
    assert list(errors) == [field]
    assert errors[field]


def test_required_consents_must_be_given() -> None:
    _values, errors = read_submission(form(credit.FORM_CONSENTS), {"consentCreditCheck": "true"})
    assert list(errors) == ["consentDataProcessing"]


def test_display_components_are_not_inputs() -> None:
    keys = [component["key"] for component in input_components(form(credit.FORM_CONSENTS))]
    assert keys == ["consentCreditCheck", "consentDataProcessing"]


def test_fields_hidden_by_their_condition_are_neither_required_nor_sent() -> None:
    schema = form(credit.FORM_INCOME)
    values, errors = read_submission(
        schema,
        {"employmentType": "retired", "monthlyNetIncome": "3000", "employerName": "Old Firm"},
    )
    assert errors == {}
    assert "employerName" not in values
    values, _ = read_submission(
        schema,
        {"employmentType": "employed", "monthlyNetIncome": "3000", "employerName": "New Firm"},
    )
    assert values["employerName"] == "New Firm"


def test_an_other_loans_detail_is_kept_only_when_there_are_other_loans() -> None:
    schema = form(credit.FORM_QUESTIONNAIRE)
    base = {"maritalStatus": "single", "dependants": "0", "otherLoansDetails": "car loan"}
    without, _ = read_submission(schema, base)
    with_loans, _ = read_submission(schema, {**base, "hasOtherLoans": "true"})
    assert "otherLoansDetails" not in without
    assert with_loans["otherLoansDetails"] == "car loan"
