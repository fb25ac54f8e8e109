"""Finding the FEEL expressions and templates of a form-js schema."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# The texts form-js evaluates as feelers templates (labels through its Label component).
TEMPLATED_PROPERTIES = frozenset(
    {
        "label",
        "description",
        "text",
        "content",
        "alt",
        "source",
        "dateLabel",
        "timeLabel",
        "appearance.prefixAdorner",
        "appearance.suffixAdorner",
    }
)
# Their translations, custom properties ``<attribute>:<locale>``.
_TEMPLATED_TRANSLATION = re.compile(
    r"properties\.(label|description|text|content|html|alt|source|dateLabel|timeLabel|"
    r"prefixAdorner|suffixAdorner):[A-Za-z-]+"
)
# Checklists and radios show each option's label with form-js' Label, which templates it.
_OPTION_LABEL = re.compile(r"values\[\d+\]\.label|properties\.option:.*:[A-Za-z-]+")
_LABELLED_OPTIONS = frozenset({"checklist", "radio"})


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


def templated_property(component: Mapping[str, Any], path: str) -> bool:
    """Whether form-js evaluates the text at this property path as a template."""
    if path in TEMPLATED_PROPERTIES or _TEMPLATED_TRANSLATION.fullmatch(path):
        return True
    return component.get("type") in _LABELLED_OPTIONS and bool(_OPTION_LABEL.fullmatch(path))


def option_label(component: Mapping[str, Any], path: str) -> bool:
    """Whether the property is an option label of a checklist or a radio group."""
    return component.get("type") in _LABELLED_OPTIONS and bool(_OPTION_LABEL.fullmatch(path))


def form_texts(schema: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, str]]:
    """Every text of the form that form-js templates and that holds ``{{``, with its
    component and property path (texts starting with ``=`` are expressions, found by
    :func:`form_expressions`)."""
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        if not isinstance(component, Mapping):
            continue
        for path, value in _properties(component, ""):
            if (
                isinstance(value, str)
                and "{{" in value
                and not value.startswith("=")
                and templated_property(component, path)
            ):
                yield component, path, value
        children = component.get("components", [])
        stack.extend(reversed(children if isinstance(children, list) else []))
