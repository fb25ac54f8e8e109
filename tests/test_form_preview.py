"""A process designer previews a form as participants will see it, without a running panel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.__main__ import main

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
