"""Reading a participant's answers against the Camunda Form pinned to their task.

Only the fields of the form are read, each converted to the type its component declares;
anything else in the request is dropped. Of those answers, only the fields the model marks
with the ``sendToProcess`` property become process variables.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from panel_core.constants import FORM_PROPERTY_SEND_TO_PROCESS
from panel_core.feel import FeelError, evaluate
from panel_core.i18n import gettext as _

INPUT_TYPES = frozenset(
    {"textfield", "textarea", "number", "checkbox", "select", "radio", "filepicker"}
)
# Their answers are the ids of uploaded documents, filled in by the upload code.
FILE_TYPES = frozenset({"filepicker"})


def input_components(schema: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every input component of the form, groups flattened, in reading order."""
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        if component.get("type") in INPUT_TYPES and component.get("key"):
            yield component
        stack.extend(reversed(component.get("components", [])))


def _options(component: Mapping[str, Any]) -> list[str]:
    return [str(option.get("value")) for option in component.get("values", [])]


def _convert(component: Mapping[str, Any], raw: Any) -> tuple[Any, str | None]:
    kind = component["type"]
    validate = component.get("validate", {})
    label = component.get("label") or component["key"]
    if kind == "checkbox":
        checked = raw is True or (isinstance(raw, str) and raw.lower() in {"true", "on", "1"})
        if validate.get("required") and not checked:
            return checked, _("Select “%(label)s” to continue.", label=label)
        return checked, None
    text = "" if raw is None else str(raw).strip()
    if not text:
        if validate.get("required"):
            if kind in {"radio", "select"}:
                return None, _("Choose “%(label)s”.", label=label)
            return None, _("Enter “%(label)s”.", label=label)
        return None, None
    if kind == "number":
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation:
            return text, _("“%(label)s” must be a number.", label=label)
        if not number.is_finite():
            return text, _("“%(label)s” must be a number.", label=label)
        if "min" in validate and number < Decimal(str(validate["min"])):
            return text, _(
                "“%(label)s” must be at least %(min)s.", label=label, min=validate["min"]
            )
        if "max" in validate and number > Decimal(str(validate["max"])):
            most = validate["max"]
            return text, _("“%(label)s” must be at most %(max)s.", label=label, max=most)
        return (int(number) if number == number.to_integral_value() else float(number)), None
    if kind in {"select", "radio"}:
        if text not in _options(component):
            return text, _("Choose one of the options for “%(label)s”.", label=label)
        return text, None
    if "maxLength" in validate and len(text) > int(validate["maxLength"]):
        return text, _(
            "“%(label)s” must be %(n)s characters or fewer.", label=label, n=validate["maxLength"]
        )
    if "minLength" in validate and len(text) < int(validate["minLength"]):
        return text, _(
            "“%(label)s” must be at least %(n)s characters.", label=label, n=validate["minLength"]
        )
    return text, None


def hidden_keys(schema: Mapping[str, Any], context: Mapping[str, Any]) -> set[str]:
    """Fields whose ``conditional.hide`` expression is true for these values.

    An expression that fails to evaluate leaves its field shown, as form-js does (feelin's
    error becomes null there); expressions the server cannot evaluate at all are refused
    when the form is checked (panel_core.feel.check_form), not here.
    """
    hidden = set()
    for component in input_components(schema):
        condition = (component.get("conditional") or {}).get("hide")
        if not condition:
            continue
        try:
            if evaluate(str(condition), context) is True:
                hidden.add(component["key"])
        except FeelError:
            continue
    return hidden


def read_submission(
    schema: Mapping[str, Any],
    submitted: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert submitted values; returns (answers, errors by field key).

    Fields hidden by their condition (evaluated on the task's variables and these answers, as
    form-js does) are neither required nor kept.
    """
    converted: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for component in input_components(schema):
        key = component["key"]
        if (
            component.get("readonly")
            or component.get("disabled")
            or component["type"] in FILE_TYPES
        ):
            continue
        value, error = _convert(component, submitted.get(key))
        converted[key] = value
        if error:
            problems[key] = error
    hidden = hidden_keys(schema, {**(variables or {}), **converted})
    values = {
        k: v
        for k, v in converted.items()
        if v is not None and k not in hidden and k not in problems
    }
    errors = {k: e for k, e in problems.items() if k not in hidden}
    return values, errors


def process_variables(schema: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers the process needs: fields marked with the ``sendToProcess`` property."""
    marked = {
        component["key"]
        for component in input_components(schema)
        if str(component.get("properties", {}).get(FORM_PROPERTY_SEND_TO_PROCESS, "")).lower()
        == "true"
    }
    return {key: value for key, value in answers.items() if key in marked}


def page_components(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the task page shows, in reading order: inputs and text blocks.

    Text blocks carry ``html``: their markdown rendered to escaped HTML (headings and
    paragraphs), so nothing from a form can inject markup into the page.
    """
    shown: list[dict[str, Any]] = []
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        kind = component.get("type")
        if kind == "text" and component.get("text"):
            shown.append({**component, "html": text_html(str(component["text"]))})
        elif kind in INPUT_TYPES and component.get("key"):
            shown.append(dict(component))
        stack.extend(reversed(component.get("components", [])))
    return shown


def text_html(markdown: str) -> str:
    blocks = [block.strip() for block in markdown.replace("\r\n", "\n").split("\n\n")]
    parts = []
    for block in blocks:
        if not block:
            continue
        hashes = len(block) - len(block.lstrip("#"))
        if 0 < hashes <= 6 and block[hashes : hashes + 1] == " ":
            parts.append(f"<h2>{html.escape(block[hashes + 1 :].strip())}</h2>")
        else:
            parts.append(f"<p>{html.escape(' '.join(block.split()))}</p>")
    return "".join(parts)
