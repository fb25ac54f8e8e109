"""What a form may use to be shown and checked by the panel.

:func:`check_form` runs for every form at deployment and when a task arrives, so a form
using something the panel cannot show or judge is refused before a participant meets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from panel_core.constants import FORM_PROPERTY_CONSENT, FORM_PROPERTY_SIGNATURE
from panel_core.feel import FeelError, parse
from panel_core.feel.jsregex import JsSyntaxError, JsUnsupportedError
from panel_core.forms.expressions import form_expressions, form_texts, option_label
from panel_core.forms.files import EXTENSIONS, accepted_types, type_names
from panel_core.forms.markup import (
    markdown_image_source,
    markdown_images,
    safe_image_source,
    text_html,
)
from panel_core.forms.schema import (
    CONTAINER_TYPES,
    FILE_TYPES,
    KEYED_TYPES,
    SUPPORTED_TYPES,
    container_path,
    is_repeating,
    key_path,
)
from panel_core.forms.templates import TemplateError, is_template, parse_template
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
        except JsSyntaxError as error:
            yield (
                f"validate.pattern {pattern!r} is not a JavaScript regular expression, which "
                f"form-js needs: {error}"
            )
        except JsUnsupportedError as error:
            yield f"validate.pattern {pattern!r} cannot be checked by the panel: {error}"
    text = component.get("text")
    if kind == "text" and isinstance(text, str) and not text.startswith("="):
        for address in markdown_images(text):
            if "{{" not in address and markdown_image_source(address) is None:
                yield (
                    f"the image {address[:60]!r} in the text is not inline PNG, JPEG, GIF or "
                    "WebP data (data:image/…;base64,…), the only images the page's content "
                    "security policy lets through"
                )
    if kind in FILE_TYPES and "accept" in component:
        accept = component.get("accept")
        if not isinstance(accept, str) or "{{" in accept:
            yield "accept must be written out: templating in it is not supported"
        elif accepted_types(accept) == frozenset():
            yield (
                f"accept {accept!r} takes none of the files the panel keeps "
                f"({type_names(frozenset(EXTENSIONS))}): every upload would be refused"
            )
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
    problems.extend(check_templates(schema))
    problems.extend(check_fixed_wording(schema))
    problems.extend(check_components(schema))
    return problems


def check_templates(schema: Mapping[str, Any]) -> list[str]:
    """Templates (``{{ … }}``) the panel could not evaluate as form-js does: a page must
    never show one as written."""
    form_id = schema.get("id", "?")
    problems = []
    for component, path, text in form_texts(schema):
        name = str(component.get("key") or component.get("id") or "?")
        where = f"form {form_id!r}, component {name!r}, {path}"
        if option_label(component, path):
            problems.append(f"{where}: templating ({{{{ … }}}}) in option labels is not supported")
        elif not is_template(text):
            problems.append(
                f"{where}: '{{{{' without a closing '}}}}' on the same line, which form-js shows "
                "as written; keep each {{ … }} on one line"
            )
        else:
            try:
                parse_template(text)
            except TemplateError as error:
                problems.append(f"{where}: {error}")
    return problems


def check_fixed_wording(schema: Mapping[str, Any]) -> list[str]:
    """Wording the panel keeps or prints away from the page must be fixed text.

    A consent is recorded, and a signed application printed, with the form's text blocks
    and the consent's or signature's label and description as written; templating or an
    expression there would record words other than those the participant saw. The printed
    document lays out headings, paragraphs, emphasis, links and lists, so code and images
    are not used in those texts either.
    """
    form_id = schema.get("id", "?")
    components = list(_components(schema, ()))
    if not any(_wording_field(component) for component, _base in components):
        return []
    problems = []
    for component, _base in components:
        name = str(component.get("key") or component.get("id") or "?")
        if component.get("type") == "text":
            attributes = ["text"]
        elif _wording_field(component):
            attributes = ["label", "description"]
        else:
            continue
        properties = component.get("properties")
        translations = properties if isinstance(properties, Mapping) else {}
        texts = [(a, component.get(a)) for a in attributes] + [
            (f"properties.{key}", value)
            for key, value in translations.items()
            if str(key).split(":")[0] in attributes
        ]
        for path, value in texts:
            if not isinstance(value, str):
                continue
            where = f"form {form_id!r}, component {name!r}, {path}"
            if is_template(value):
                problems.append(
                    f"{where}: a form with a consent or a signature must word it in fixed "
                    "text (the panel records it as written): no templating or expressions"
                )
            elif component.get("type") == "text" and re.search(r"<(code|img)\b", text_html(value)):
                problems.append(
                    f"{where}: a form with a consent or a signature cannot show code or "
                    "images in its text, which the signed document cannot lay out"
                )
    return problems


def _wording_field(component: Mapping[str, Any]) -> bool:
    properties = component.get("properties")
    if not isinstance(properties, Mapping):
        return False
    consent = str(properties.get(FORM_PROPERTY_CONSENT, "")).lower() == "true"
    return consent or bool(properties.get(FORM_PROPERTY_SIGNATURE))
