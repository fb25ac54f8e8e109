"""Submitted answers as people read them: each field's label and its value in words.

The application a participant signs and the staff's case page show answers the same way, so
what the bank reads is what the participant signed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from panel_core.forms.schema import input_components
from panel_core.forms.texts import localise
from panel_core.i18n import gettext as _


class NamedFile(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def value_text(value: Any, documents: Mapping[str, NamedFile]) -> str:
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return ", ".join(value_text(item, documents) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {value_text(v, documents)}" for k, v in value.items())
    document = documents.get(str(value))
    if document is not None:
        return f"{document.filename} (SHA-256 {document.sha256})"
    return str(value)


def answer_fields(
    schema: Mapping[str, Any],
    answers: Mapping[str, Any],
    documents: Mapping[str, NamedFile],
    *,
    skip: Collection[str] = (),
) -> list[tuple[str, str]]:
    """(label, value) of every answered input of the form, in the form's order, in the
    current language; an option's label stands for its value."""
    fields = []
    for component in input_components(localise(schema)):
        key = component["key"]
        if key not in answers or key in skip:
            continue
        label = component.get("label") or key
        options = {
            str(option.get("value")): str(option.get("label"))
            for option in component.get("values") or []
        }
        value = answers[key]
        shown = options.get(str(value)) if options and not isinstance(value, list) else None
        fields.append((str(label), shown or value_text(value, documents)))
    return fields
