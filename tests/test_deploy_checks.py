"""A form whose expressions the server cannot evaluate is refused before anything is deployed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from panel_core.cases import case_types
from panel_core.cli import ModelCheckError, check_models, deploy, model_files
from panel_core.settings import Settings
from tests import credit

MODEL = (credit.FOLDER / "credit-application.bpmn").read_bytes()
DESCRIPTOR = json.loads((credit.FOLDER / "credit-application.case.json").read_text())


def problems_with(change: Any) -> list[str]:
    """What the check says of the shipped descriptor after ``change`` edited its JSON."""
    document = json.loads(json.dumps(DESCRIPTOR))
    change(document["statuses"])
    return case_types.check(case_types.parse(json.dumps(document).encode()), MODEL)


def test_the_shipped_models_pass_the_check() -> None:
    assert check_models(model_files()) == []


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unsupported_expression_stops_the_whole_deployment(tmp_path: Path) -> None:
    folder = tmp_path / "credit-application"
    shutil.copytree(credit.FOLDER, folder)
    form_path = folder / "forms" / "credit-income.form"
    form = json.loads(form_path.read_text())
    for component in form["components"]:
        if component.get("key") == "employerName":
            component["conditional"] = {"hide": '=today() > date("2020-01-01")'}
    form_path.write_text(json.dumps(form))
    # The engine address is unreachable on purpose: the check must refuse before any call.
    settings = Settings(demo_mode=True, camunda_rest_url="http://127.0.0.1:9")
    with pytest.raises(ModelCheckError) as refused:
        await deploy(settings, [folder])
    assert "credit-income.form" in str(refused.value)
    assert "employerName" in str(refused.value)


def test_a_final_status_must_have_its_decision_sms_in_every_language() -> None:
    assert problems_with(lambda statuses: None) == []
    untranslated = problems_with(lambda statuses: statuses[credit.STATUS_APPROVED]["sms"].pop("en"))
    assert untranslated == ["statuses.approved.sms has no text in en"]
    blank = problems_with(lambda statuses: statuses[credit.STATUS_REJECTED]["sms"].update(pl=" "))
    assert blank == ["statuses.rejected.sms has no text in pl"]
    missing = problems_with(lambda statuses: statuses[credit.STATUS_REJECTED].pop("sms"))
    assert missing == ["final status 'rejected' has no 'sms' (the decision text)"]


def test_only_a_final_status_may_text_a_decision_or_show_a_reason() -> None:
    def on_review(statuses: dict[str, Any]) -> None:
        statuses[credit.STATUS_IN_REVIEW]["sms"] = {"pl": "W analizie.", "en": "In review."}
        statuses[credit.STATUS_IN_REVIEW]["showReason"] = True

    assert problems_with(on_review) == [
        "status 'in-review' is not final and cannot have an 'sms'",
        "status 'in-review' is not final and cannot have 'showReason'",
    ]
