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
    string value starts with ``=`` counts, ``conditional.hide`` among them. An option list's
    ``valuesExpression`` and an expression field's ``expression`` are FEEL with or without
    the ``=``, as form-js reads them.
    """
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        if not isinstance(component, Mapping):
            continue
        label = str(component.get("key") or component.get("id") or "?")
        for path, value in _properties(component, ""):
            text = expression_of(value)
            if text is None and _always_feel(component, path) and isinstance(value, str):
                text = value if value.strip() else None
            if text is not None:
                yield label, path, text
        children = component.get("components", [])
        stack.extend(reversed(children if isinstance(children, list) else []))


def _always_feel(component: Mapping[str, Any], path: str) -> bool:
    return path == "valuesExpression" or (
        path == "expression" and component.get("type") == "expression"
    )


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
    """Problems with the form; an empty list means the panel can show and check all of it.

    Every expression in a property the server evaluates must be in the supported subset;
    an expression anywhere else is refused, since the panel would show it as text (custom
    properties are plain text and never count). Component types, regex patterns and the
    like are checked by :func:`panel_core.forms.checks.check_components`.
    """
    # Imported here: panel_core.forms evaluates its expressions through this package.
    from panel_core.forms.checks import check_components, evaluated_property

    form_id = schema.get("id", "?")
    problems = []
    for component, path, text in form_expressions(schema):
        evaluated = evaluated_property(path)
        if evaluated is None:
            continue
        if not evaluated:
            problems.append(
                f"form {form_id!r}, component {component!r}, {path} = {'=' + text!r}: "
                "the panel does not evaluate expressions in this property"
            )
            continue
        try:
            parse(text)
        except FeelError as error:
            problems.append(
                f"form {form_id!r}, component {component!r}, {path} = {'=' + text!r}: {error}"
            )
    problems.extend(check_components(schema))
    return problems
