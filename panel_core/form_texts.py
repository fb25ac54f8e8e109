"""Form texts in the participant's language.

A ``.form`` file's own texts are in Polish, the panel's default language. Translations are
Camunda Modeler custom properties on the same component, named ``<attribute>:<locale>``
(``label:en``, ``description:en``, ``text:en``) and ``option:<value>:<locale>`` for the labels
of static options. Untranslated texts stay as authored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panel_core.i18n import DEFAULT_LOCALE, current_locale

TRANSLATABLE = ("label", "description", "text", "html", "alt")


def _component(component: Mapping[str, Any], locale: str) -> dict[str, Any]:
    properties = component.get("properties") or {}
    localised = dict(component)
    for attribute in TRANSLATABLE:
        translated = properties.get(f"{attribute}:{locale}")
        if isinstance(translated, str) and translated.strip():
            localised[attribute] = translated
    if isinstance(component.get("values"), list):
        localised["values"] = [
            {
                **option,
                "label": properties.get(f"option:{option.get('value')}:{locale}")
                or option.get("label"),
            }
            for option in component["values"]
            if isinstance(option, Mapping)
        ]
    if isinstance(component.get("components"), list):
        localised["components"] = [_component(child, locale) for child in component["components"]]
    return localised


def localise(schema: Mapping[str, Any], locale: str | None = None) -> dict[str, Any]:
    """A copy of the schema with its texts in the locale (default: the request's)."""
    locale = locale or current_locale()
    if locale == DEFAULT_LOCALE:
        return dict(schema)
    return {
        **schema,
        "components": [_component(c, locale) for c in schema.get("components", [])],
    }
