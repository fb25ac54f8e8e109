"""What a form may use to be shown and checked by the panel.

:func:`check_form` runs for every form at deployment and when a task arrives, so a form
using something the panel cannot show or judge is refused before a participant meets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from panel_core.feel import FeelError, parse
from panel_core.forms.expressions import form_expressions
from panel_core.forms.markup import safe_image_source
from panel_core.forms.schema import (
    CONTAINER_TYPES,
    FILE_TYPES,
    KEYED_TYPES,
    SUPPORTED_TYPES,
    container_path,
    is_repeating,
    key_path,
)
from panel_core.forms.values import compile_pattern

# Why a component type the panel knows is refused.
REFUSED_TYPES: Mapping[str, str] = {
    "iframe": "frames cannot be shown: the panel's content security policy forbids them",
    "documentPreview": "document previews are not shown by the panel yet",
}
# Properties whose FEEL the server evaluates; FEEL anywhere else is refused.
EVALUATED_PROPERTIES = frozenset(
    {
        "conditional.hide",
        "readonly",
        "valuesExpression",
        "expression",
        "validate.min",
        "validate.max",
        "validate.minLength",
        "validate.maxLength",
        "label",
        "description",
        "dateLabel",
        "timeLabel",
        "text",
        "content",
        "alt",
        "source",
        "appearance.prefixAdorner",
        "appearance.suffixAdorner",
        "dataSource",
        "columnsExpression",
    }
)
# Translations (custom properties ``<attribute>:<locale>``) of evaluated texts.
_TRANSLATION = re.compile(
    r"properties\.(label|description|dateLabel|timeLabel|text|content|html|alt|source|"
    r"prefixAdorner|suffixAdorner):[A-Za-z-]+"
)
BUTTON_ACTIONS = frozenset({"submit", "reset"})
DATETIME_SUBTYPES = frozenset({"date", "time", "datetime"})


def evaluated_property(path: str) -> bool | None:
    """True if the server evaluates FEEL at this property path of a component, False if it
    does not, None for custom properties, which are plain text and never FEEL."""
    if path in EVALUATED_PROPERTIES or _TRANSLATION.fullmatch(path):
        return True
    if path.startswith("properties."):
        return None
    return False


def check_components(schema: Mapping[str, Any]) -> list[str]:
    """Problems with the form's components; an empty list means the panel supports all."""
    form_id = schema.get("id", "?")
    problems = []
    claimed: dict[tuple[str | int, ...], str] = {}
    for component, base in _components(schema, ()):
        name = str(component.get("key") or component.get("id") or "?")
        for problem in _problems(component):
            problems.append(f"form {form_id!r}, component {name!r}: {problem}")
        if component.get("type") in FILE_TYPES and base:
            # Documents are requested by the field's own key, one list per form.
            problems.append(
                f"form {form_id!r}, component {name!r}: a file picker cannot sit inside a "
                "group with a path or a dynamic list"
            )
        if component.get("type") in KEYED_TYPES and component.get("key"):
            path = base + key_path(component)
            if path in claimed:
                problems.append(
                    f"form {form_id!r}, component {name!r}: its key {component['key']!r} "
                    f"binds the same answer as component {claimed[path]!r}"
                )
            claimed.setdefault(path, name)
    return problems


def _components(
    container: Mapping[str, Any], base: tuple[str | int, ...]
) -> Iterator[tuple[Mapping[str, Any], tuple[str | int, ...]]]:
    components = container.get("components")
    if not isinstance(components, list):
        return
    for component in components:
        if not isinstance(component, Mapping):
            continue
        yield component, base
        if component.get("type") in CONTAINER_TYPES:
            inner = base + container_path(component)
            # Rows get an index of their own; one row stands for all of them here.
            yield from _components(component, (*inner, 0) if is_repeating(component) else inner)


def _problems(component: Mapping[str, Any]) -> Iterator[str]:
    kind = component.get("type")
    if kind in REFUSED_TYPES:
        yield f"component type {kind!r} is not supported: {REFUSED_TYPES[str(kind)]}"
        return
    if kind not in SUPPORTED_TYPES:
        yield f"component type {kind!r} is not supported by the panel"
        return
    if kind == "button" and component.get("action", "submit") not in BUTTON_ACTIONS:
        yield f"button action {component.get('action')!r} is not supported"
    if kind == "datetime" and component.get("subtype", "date") not in DATETIME_SUBTYPES:
        yield f"datetime subtype {component.get('subtype')!r} is not supported"
    validate = component.get("validate")
    pattern = validate.get("pattern") if isinstance(validate, Mapping) else None
    if isinstance(pattern, str) and pattern:
        try:
            compile_pattern(pattern)
        except re.error as error:
            yield f"validate.pattern {pattern!r} cannot be checked by the panel: {error}"
    for attribute in ("text", "content"):
        value = component.get(attribute)
        if isinstance(value, str) and "{{" in value:
            yield f"{attribute} uses templating ({{{{ … }}}}), which the panel does not render"
    source = component.get("source")
    static = isinstance(source, str) and not source.startswith("=")
    if kind == "image" and static and safe_image_source(source) is None:
        yield "image source must be an https address or a PNG, JPEG, GIF or WebP data URI"


def check_form(schema: Mapping[str, Any]) -> list[str]:
    """Problems with the form; an empty list means the panel can show and check all of it.

    Every expression in a property the server evaluates must be in the supported subset;
    an expression anywhere else is refused, since the panel would show it as text (custom
    properties are plain text and never count). Component types, regex patterns and the
    like are checked by :func:`check_components`.
    """
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
