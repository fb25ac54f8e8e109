"""Form texts in the participant's language.

A ``.form`` file's own texts are in Polish, the panel's default language. Translations are
Camunda Modeler custom properties on the same component, named ``<attribute>:<locale>``:
``label:en``, ``description:en``, ``text:en`` (a text block), ``html:en`` or ``content:en``
(an HTML block), ``alt:en`` and ``source:en`` (an image), ``dateLabel:en``,
``timeLabel:en``, ``prefixAdorner:en``, ``suffixAdorner:en``, ``patternErrorMessage:en``;
``option:<value>:<locale>`` for the labels of static options and ``column:<key>:<locale>``
for table columns. Untranslated texts stay as authored; values never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panel_core.forms.schema import token_of
from panel_core.i18n import current_locale

TEXT_ATTRIBUTES = ("label", "description", "text", "alt", "source", "dateLabel", "timeLabel")
APPEARANCE_ATTRIBUTES = ("prefixAdorner", "suffixAdorner")


def localise(schema: Mapping[str, Any], locale: str | None = None) -> dict[str, Any]:
    """A copy of the schema with its texts in the locale (default: the request's)."""
    locale = locale or current_locale()
    localised = dict(schema)
    if isinstance(schema.get("components"), list):
        localised["components"] = [_component(c, locale) for c in schema["components"]]
    return localised


def _component(component: Any, locale: str) -> Any:
    if not isinstance(component, Mapping):
        return component
    properties = component.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}

    def translation(name: str) -> str | None:
        text = properties.get(f"{name}:{locale}")
        return text if isinstance(text, str) and text.strip() else None

    localised = dict(component)
    for attribute in TEXT_ATTRIBUTES:
        text = translation(attribute)
        if text is not None:
            localised[attribute] = text
    content = translation("content") or translation("html")
    if content is not None:
        localised["content"] = content
    appearance = component.get("appearance")
    if isinstance(appearance, Mapping):
        localised["appearance"] = {
            **appearance,
            **{
                name: text
                for name in APPEARANCE_ATTRIBUTES
                if (text := translation(name)) is not None
            },
        }
    validate = component.get("validate")
    message = translation("patternErrorMessage")
    if isinstance(validate, Mapping) and message is not None:
        localised["validate"] = {**validate, "patternErrorMessage": message}
    if isinstance(component.get("values"), list):
        localised["values"] = [
            _option(option, properties, locale) for option in component["values"]
        ]
    if isinstance(component.get("columns"), list):
        localised["columns"] = [
            {**column, "label": translation(f"column:{column.get('key')}") or column.get("label")}
            if isinstance(column, Mapping)
            else column
            for column in component["columns"]
        ]
    if isinstance(component.get("components"), list):
        localised["components"] = [_component(child, locale) for child in component["components"]]
    return localised


def _option(option: Any, properties: Mapping[str, Any], locale: str) -> Any:
    if not isinstance(option, Mapping):
        return option
    text = properties.get(f"option:{token_of(option.get('value'))}:{locale}")
    if isinstance(text, str) and text.strip():
        return {**option, "label": text}
    return dict(option)
