"""Consents: each one recorded with the exact text the participant saw and its hash."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.constants import FORM_PROPERTY_CONSENT
from panel_core.db.models import ConsentRecord, PanelTask
from panel_core.forms import localise, page_components


def consent_parts(schema: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The explanatory text (markdown) a form's consents share, and each consent's own
    statement: its label and description."""
    components = page_components(schema)
    intro = "\n\n".join(str(c["text"]).strip() for c in components if c.get("type") == "text")
    statements = {}
    for component in components:
        marked = str(component.get("properties", {}).get(FORM_PROPERTY_CONSENT, "")).lower()
        if component.get("type") == "checkbox" and marked == "true":
            parts = [str(component.get("label", "")), str(component.get("description", ""))]
            statements[component["key"]] = "\n\n".join(part for part in parts if part)
    return intro, statements


def consent_text(intro: str, statement: str) -> str:
    return "\n\n".join(part for part in (intro, statement) if part)


def consent_texts(schema: Mapping[str, Any]) -> dict[str, str]:
    """The full text of each consent in a form: the form's explanatory text plus its label."""
    intro, statements = consent_parts(schema)
    return {key: consent_text(intro, statement) for key, statement in statements.items()}


def text_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_consents(
    session: AsyncSession,
    task: PanelTask,
    participant_id: uuid.UUID,
    answers: Mapping[str, Any],
    *,
    schema: Mapping[str, Any] | None = None,
    form_key: int | None = None,
    assisted_by: str | None = None,
) -> list[ConsentRecord]:
    """Add a record for every consent given in these answers, in the caller's transaction.

    ``schema`` and ``form_key`` are the form the consents were given in where it is a variant
    of the task's own; ``assisted_by`` the member of staff they were given through.
    """
    records = []
    form = task.form_schema if schema is None else schema
    for key, text in consent_texts(localise(form or {})).items():
        if answers.get(key) is True:
            record = ConsentRecord(
                id=uuid.uuid4(),
                case_id=task.case_id,
                participant_id=participant_id,
                panel_task_id=task.id,
                consent_key=key,
                form_key=task.form_key if form_key is None else form_key,
                assisted_by=assisted_by,
                text=text,
                text_sha256=text_version(text),
            )
            session.add(record)
            records.append(record)
    return records
