"""A process designer previews a form as participants will see it, without a running panel."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from devtools.__main__ import main
from devtools.form_preview import sent_empty
from panel_core.i18n import use_locale
from panel_core.tasks.work import judge

DOCS_FORMS = Path(__file__).resolve().parent.parent / "docs" / "forms"


def test_a_form_is_previewed_with_its_variables_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "preview-form",
            str(DOCS_FORMS / "every-component.form"),
            "--variables",
            str(DOCS_FORMS / "every-component.variables.json"),
            "--lang",
            "en",
            "--errors",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "index.html")
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<title>Error: " in html and 'href="#field-fullName"' in html
    assert ">Kraków</option>" in html and "Full name" in html
    # Opened from disk, the stylesheet is found beside the page.
    assert 'href="static/css/panel.css' in html
    assert (tmp_path / "static" / "css" / "panel.css").is_file()


def test_a_form_the_panel_cannot_serve_is_previewed_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    form = tmp_path / "framed.form"
    form.write_text(
        json.dumps(
            {"id": "framed", "components": [{"type": "iframe", "id": "Frame_1", "url": "x"}]}
        )
    )
    assert main(["preview-form", str(form), "--out", str(tmp_path / "out")]) == 1
    assert "'iframe' is not supported" in capsys.readouterr().err
    assert "nie umie sprawdzić" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")


def test_errors_are_those_the_panel_reports_for_the_form_sent_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A required file picker is reported as the panel reports it when the task is sent
    without a file; one hidden by its condition is not, in the preview as in the panel."""
    schema = {
        "id": "with-files",
        "components": [
            {"type": "textfield", "key": "name", "label": "Name", "validate": {"required": True}},
            {
                "type": "filepicker",
                "key": "incomeProof",
                "label": "Proof of income",
                "validate": {"required": True},
            },
            {
                "type": "filepicker",
                "key": "extraProof",
                "label": "Extra proof",
                "validate": {"required": True},
                "conditional": {"hide": "=true"},
            },
        ],
    }
    form = tmp_path / "with-files.form"
    form.write_text(json.dumps(schema), encoding="utf-8")
    assert (
        main(["preview-form", str(form), "--lang", "en", "--errors", "--out", str(tmp_path)]) == 0
    )
    capsys.readouterr()
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="#field-incomeProof"' in page and "Add “Proof of income”." in page
    assert 'href="#field-extraProof"' not in page
    with use_locale("en"):
        _answers, panel_errors = judge(
            SimpleNamespace(form_schema=schema),  # type: ignore[arg-type]
            {},
            variables={},
            today=date.today(),
            files={},
        )
    assert sent_empty(schema, {}, "en", date.today()) == panel_errors
    assert set(panel_errors) == {"name", "incomeProof"}
