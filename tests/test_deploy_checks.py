"""A form whose expressions the server cannot evaluate is refused before anything is deployed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from panel_core.cli import ModelCheckError, check_models, deploy, model_files
from panel_core.settings import Settings


def test_the_shipped_models_pass_the_check() -> None:
    assert check_models(model_files()) == []


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unsupported_expression_stops_the_whole_deployment(tmp_path: Path) -> None:
    shutil.copytree(Path(model_files()[0]).parent, tmp_path / "bpmn")
    form_path = tmp_path / "bpmn" / "forms" / "credit-income.form"
    form = json.loads(form_path.read_text())
    for component in form["components"]:
        if component.get("key") == "employerName":
            component["conditional"] = {"hide": '=today() > date("2020-01-01")'}
    form_path.write_text(json.dumps(form))
    files = model_files(tmp_path / "bpmn")
    # The engine address is unreachable on purpose: the check must refuse before any call.
    settings = Settings(demo_mode=True, camunda_rest_url="http://127.0.0.1:9")
    with pytest.raises(ModelCheckError) as refused:
        await deploy(settings, files)
    assert "credit-income.form" in str(refused.value)
    assert "employerName" in str(refused.value)
