"""Form variants in the case-type descriptor: other views of one step, refused at deploy
unless they complete it with the same effect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from panel_core.cases import case_types
from panel_core.cases.variants import (
    ASSISTED,
    STAFF,
    AssistedRules,
    FormVariant,
    ModelTask,
    choose,
    variant_problems,
)
from panel_core.cli import check_folder, main
from panel_core.settings import get_settings
from tests import credit

FORMS = credit.FOLDER / "forms"
PHONE_FORM = credit.FORM_QUESTIONNAIRE_PHONE


def form(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((FORMS / f"{name}.form").read_text(encoding="utf-8"))
    return schema


def shipped_forms() -> dict[str, dict[str, Any]]:
    return {schema["id"]: schema for schema in (form(p.stem) for p in FORMS.glob("*.form"))}


TASKS = case_types.model_user_tasks((credit.FOLDER / "credit-application.bpmn").read_bytes())


def problems(
    variants: dict[str, list[FormVariant]],
    forms: dict[str, dict[str, Any]] | None = None,
    assisted: AssistedRules | None = None,
) -> list[str]:
    return variant_problems(variants, assisted or AssistedRules(), TASKS, forms or shipped_forms())


def with_form(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**shipped_forms(), schema["id"]: schema}


def test_the_model_tells_participants_tasks_from_the_banks() -> None:
    assert TASKS[credit.ELEMENT_TASK_QUESTIONNAIRE] == ModelTask(credit.FORM_QUESTIONNAIRE, True)
    assert TASKS[credit.ELEMENT_TASK_ANALYST_REVIEW] == ModelTask(credit.FORM_ANALYST_REVIEW, False)


def test_the_shipped_variant_is_the_same_step() -> None:
    descriptor = case_types.parse((credit.FOLDER / "credit-application.case.json").read_bytes())
    variants = descriptor.form_variants[credit.ELEMENT_TASK_QUESTIONNAIRE]
    assert variants == [FormVariant(PHONE_FORM, ASSISTED, ("call-centre-agents",))]
    assert problems(descriptor.form_variants) == []
    assert check_folder(credit.FOLDER) == []


def test_a_variant_sending_other_fields_to_the_process_is_refused_naming_both_forms() -> None:
    phone = form(PHONE_FORM)
    for component in phone["components"]:
        if component.get("key") == "maritalStatus":
            component.setdefault("properties", {})["sendToProcess"] = "true"
    found = problems(
        {credit.ELEMENT_TASK_QUESTIONNAIRE: [FormVariant(PHONE_FORM, ASSISTED)]}, with_form(phone)
    )
    assert found == [
        "formVariants.task-questionnaire[0]: user task 'task-questionnaire': form "
        f"'{PHONE_FORM}' sends 'maritalStatus' to the process, but the task's own form "
        "'credit-questionnaire' sends nothing (sendToProcess): a variant must complete the "
        "step with the same effect"
    ]


def test_a_variant_leaving_out_a_field_the_process_needs_is_refused() -> None:
    # The income form sends the proof of income's ids; a variant without the picker would
    # complete the step without them.
    income = form(credit.FORM_INCOME)
    short = {
        **income,
        "id": "credit-income-short",
        "components": [c for c in income["components"] if c.get("type") != "filepicker"],
    }
    found = problems(
        {credit.ELEMENT_TASK_INCOME: [FormVariant("credit-income-short", ASSISTED)]},
        with_form(short),
    )
    assert len(found) == 1
    assert "form 'credit-income-short' sends nothing" in found[0]
    assert "'credit-income' sends 'incomeProof'" in found[0]


def test_unknown_elements_forms_and_malformed_groups_are_refused() -> None:
    found = problems(
        {
            "task-nowhere": [FormVariant(PHONE_FORM, ASSISTED)],
            credit.ELEMENT_TASK_QUESTIONNAIRE: [
                FormVariant("no-such-form", ASSISTED, ("call-centre-agents",)),
                FormVariant(PHONE_FORM, ASSISTED, ("/call-centre-agents", "call centre")),
            ],
        }
    )
    assert found == [
        "formVariants.task-nowhere: 'task-nowhere' is not a user task of the model",
        "formVariants.task-questionnaire[0]: form 'no-such-form' is not one of the case type's "
        "forms (forms/<form-id>.form, deployed with the model)",
        "formVariants.task-questionnaire[1]: group '/call-centre-agents' is not a group name as "
        "the identity provider's 'groups' claim gives it (letters, digits, '.', '_', '-'; no "
        "path, no spaces)",
        "formVariants.task-questionnaire[1]: group 'call centre' is not a group name as the "
        "identity provider's 'groups' claim gives it (letters, digits, '.', '_', '-'; no path, "
        "no spaces)",
    ]


def test_a_variant_asks_only_the_tasks_own_questions_of_the_same_kind() -> None:
    phone = form(PHONE_FORM)
    for component in phone["components"]:
        if component.get("key") == "dependants":
            component["type"] = "textfield"
    phone["components"].append(
        {"type": "textfield", "id": "Field_extra", "key": "callNotes", "label": "Notatki"}
    )
    found = problems(
        {credit.ELEMENT_TASK_QUESTIONNAIRE: [FormVariant(PHONE_FORM, ASSISTED)]}, with_form(phone)
    )
    assert found == [
        "formVariants.task-questionnaire[0]: user task 'task-questionnaire': form "
        f"'{PHONE_FORM}' asks 'callNotes', which the task's own form 'credit-questionnaire' "
        "does not: its answer would be shown nowhere",
        "formVariants.task-questionnaire[0]: user task 'task-questionnaire': 'dependants' is a "
        f"textfield in form '{PHONE_FORM}' but a number in the task's own form "
        "'credit-questionnaire'",
    ]


def test_modes_fit_their_tasks_and_a_variant_no_one_would_get_is_refused() -> None:
    found = problems(
        {
            credit.ELEMENT_TASK_ANALYST_REVIEW: [
                FormVariant(credit.FORM_ANALYST_REVIEW, ASSISTED),
            ],
            credit.ELEMENT_TASK_QUESTIONNAIRE: [
                FormVariant(credit.FORM_QUESTIONNAIRE, STAFF),
                FormVariant(PHONE_FORM, ASSISTED),
                FormVariant(PHONE_FORM, ASSISTED, ("call-centre-agents",)),
            ],
        }
    )
    assert found == [
        "formVariants.task-analyst-review[0]: mode 'assisted' is for a participant's task, and "
        "'task-analyst-review' is the bank's (use mode 'staff')",
        "formVariants.task-questionnaire[0]: mode 'staff' is for a bank task, and "
        "'task-questionnaire' is a participant's (use mode 'assisted')",
        "formVariants.task-questionnaire[2]: never used: the earlier variant "
        f"'{PHONE_FORM}' fits everyone this one is for",
    ]


def test_consents_in_an_assisted_variant_need_the_case_types_leave() -> None:
    variants = {credit.ELEMENT_TASK_CONSENTS: [FormVariant(credit.FORM_CONSENTS, ASSISTED)]}
    assert problems(variants) == [
        "formVariants.task-consents[0]: form 'credit-consents' asks for consents, which the "
        'case type does not let staff take in assisted mode (set "assisted": '
        '{"consents": true} to allow it)'
    ]
    assert problems(variants, assisted=AssistedRules(consents=True)) == []
    signing = {credit.ELEMENT_TASK_SIGN: [FormVariant(credit.FORM_SIGNATURE, ASSISTED)]}
    assert problems(signing, assisted=AssistedRules(consents=True)) == [
        "formVariants.task-sign[0]: form 'credit-signature' has a signature, and a signature "
        "is never given in assisted mode (the participant signs in the panel)"
    ]


def test_the_first_variant_that_fits_the_mode_and_the_groups_wins() -> None:
    variants = [
        FormVariant("for-agents", ASSISTED, ("call-centre-agents",)),
        FormVariant("for-everyone", ASSISTED),
        FormVariant("for-advisers", STAFF, ("branch-advisers",)),
    ]
    agents = frozenset({"call-centre-agents"})
    assert choose(variants, ASSISTED, agents) == variants[0]
    assert choose(variants, ASSISTED, frozenset({"team-managers"})) == variants[1]
    assert choose(variants, STAFF, agents) is None
    assert choose(variants, STAFF, frozenset({"branch-advisers"})) == variants[2]


def test_deploy_refuses_the_case_type_and_names_the_element_and_the_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "credit-application"
    shutil.copytree(credit.FOLDER, folder)
    path = folder / "forms" / f"{PHONE_FORM}.form"
    phone = json.loads(path.read_text(encoding="utf-8"))
    for component in phone["components"]:
        if component.get("key") == "dependants":
            component.setdefault("properties", {})["sendToProcess"] = "true"
    path.write_text(json.dumps(phone), encoding="utf-8")
    # Refused before anything is called: no engine or database is reachable here.
    monkeypatch.setenv("PANEL_DEMO_MODE", "true")
    monkeypatch.setenv("PANEL_CAMUNDA_REST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PANEL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    get_settings.cache_clear()
    try:
        assert main(["deploy", str(folder)]) == 2
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().err
    assert "nothing was deployed" in printed
    assert "credit-application.case.json: formVariants.task-questionnaire[0]" in printed
    assert f"form '{PHONE_FORM}' sends 'dependants'" in printed
    assert "own form 'credit-questionnaire' sends nothing" in printed
