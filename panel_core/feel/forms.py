"""Finding the FEEL expressions of a form-js schema and checking that all are supported."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from panel_core.feel.errors import FeelError
from panel_core.feel.parser import parse


def expression_of(value: Any) -> str | None:
    """The FEEL text of a form-js property value, if it is an expression (``"=…"``)."""
    if isinstance(value, str) and value.startswith("="):
        return value[1:]
    return None


def form_expressions(schema: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Every expression of the form: (component key or id, property path, FEEL text).

    Components are walked depth-first in reading order, including the nested
    ``components`` of groups and dynamic lists; within a component every property whose
    string value starts with ``=`` counts, ``conditional.hide`` among them.
    """
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        if not isinstance(component, Mapping):
            continue
        label = str(component.get("key") or component.get("id") or "?")
        for path, value in _properties(component, ""):
            text = expression_of(value)
            if text is not None:
                yield label, path, text
        stack.extend(reversed(component.get("components", [])))


def _properties(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if path == "" and key == "components":
                continue
            yield from _properties(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _properties(item, f"{path}[{index}]")
    else:
        yield path, value


def check_form(schema: Mapping[str, Any]) -> list[str]:
    """Problems with the form's expressions; an empty list means all are supported."""
    form_id = schema.get("id", "?")
    problems = []
    for component, path, text in form_expressions(schema):
        try:
            parse(text)
        except FeelError as error:
            problems.append(
                f"form {form_id!r}, component {component!r}, {path} = {'=' + text!r}: {error}"
            )
    return problems
