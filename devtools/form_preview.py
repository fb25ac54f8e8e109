"""A ``.form`` file as a participant's task page shows it, without a running panel.

``python -m devtools preview-form bpmn/credit-application/forms/credit-income.form --lang en
--errors`` writes ``preview/index.html`` and the stylesheet beside it: what a process designer
checks before deploying a form. The page comes from the panel's own templates and form code,
so it is what participants will see, minus the header's session links.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine

from panel_core.forms import localise, page_fields, read_submission
from panel_core.forms.checks import check_form
from panel_core.i18n import use_locale
from panel_core.tasks.consents import consent_texts, text_version
from panel_core.tasks.signing import SignableDocument
from panel_web.pages import STATIC_DIR, TEMPLATES_DIR, install_i18n


def render_form_page(
    schema: Mapping[str, Any],
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
    consent_versions: Mapping[str, str] | None = None,
    locale: str = "pl",
    today: date | None = None,
    signing: SignableDocument | None = None,
) -> str:
    """The task page for this form: fresh, or with the values and errors of a post; with
    ``signing``, the document its signature box signs."""
    today = today or date.today()
    engine = JinjaTemplateEngine(directory=TEMPLATES_DIR)
    install_i18n(engine)
    with use_locale(locale):
        fields = page_fields(
            localise(schema),
            values=values or {},
            errors=errors or {},
            variables=variables or {},
            today=today,
        )
        return engine.engine.get_template("task.html.j2").render(
            request=SimpleNamespace(url=SimpleNamespace(path="/tasks/preview")),
            csrf_input='<input type="hidden" name="_csrf_token" value="preview">',
            task=SimpleNamespace(id="preview", state=SimpleNamespace(value="open")),
            task_title=str(schema.get("id", "")),
            form_problems=check_form(schema),
            fields=fields,
            consent_versions=consent_versions or {},
            values=values or {},
            saved=False,
            errors=errors or {},
            uploaded={},
            has_files=any(getattr(node, "kind", "") == "file" for node in fields),
            signing=signing,
            code_state="",
            participant_session=None,
        )


def sent_empty(
    schema: Mapping[str, Any], variables: Mapping[str, Any], locale: str, today: date
) -> dict[str, str]:
    """The errors the page shows when the form is sent as it first appears: judged as the
    panel judges a sent task (panel_core.tasks.work.judge), with no file uploaded."""
    with use_locale(locale):
        _answers, errors = read_submission(localise(schema), {}, variables, today, files={})
    return errors


def write_preview(
    form: Path,
    out: Path,
    *,
    variables: Mapping[str, Any] | None = None,
    locale: str = "pl",
    with_errors: bool = False,
) -> Path:
    """Write ``out/index.html`` (and the static files it links) for the form; returns it."""
    schema = json.loads(form.read_text(encoding="utf-8"))
    today = date.today()
    variables = variables or {}
    errors = sent_empty(schema, variables, locale, today) if with_errors else {}
    # With errors, the page shows what was sent: nothing.
    values = {"action": "send"} if with_errors else {}
    with use_locale(locale):
        versions = {
            key: text_version(text) for key, text in consent_texts(localise(schema)).items()
        }
    html = render_form_page(
        schema,
        values=values,
        errors=errors,
        variables=variables,
        consent_versions=versions,
        locale=locale,
        today=today,
    )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC_DIR, out / "static", dirs_exist_ok=True)
    page = out / "index.html"
    # Opened from disk, the page finds its stylesheet next to it.
    page.write_text(html.replace('"/static/', '"static/'), encoding="utf-8")
    return page
