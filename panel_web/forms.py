"""Reading a posted form the way the Camunda Forms renderer expects it."""

from __future__ import annotations

from typing import Any


def form_values(form: Any) -> dict[str, Any]:
    """The form's text values; a field sent several times (a checklist) becomes a list."""
    values: dict[str, Any] = {}
    for key in form:
        if key == "_csrf_token":
            continue
        texts = [v for v in form.getall(key) if isinstance(v, str)]
        if texts:
            values[key] = texts if len(texts) > 1 else texts[0]
    return values
