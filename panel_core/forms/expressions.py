"""Finding the FEEL expressions of a form-js schema: where the panel evaluates FEEL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


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
