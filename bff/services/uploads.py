"""Files sent with a task form: stored as the participant's documents before anything else.

Uploads are kept even when other answers on the page have errors, so nobody uploads twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar.datastructures import State, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import audit
from panel_core.auth.service import Client
from panel_core.db.models import PanelTask
from panel_core.documents.scanning import Scanner
from panel_core.documents.service import (
    Limits,
    UploadRefusedError,
    store_upload,
    task_documents,
)
from panel_core.documents.storage import CHUNK_BYTES, DocumentStorage
from panel_core.forms import input_components
from panel_core.i18n import gettext as _


def filepickers(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in input_components(schema) if c.get("type") == "filepicker"]


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk


def uploads_in(form: Any, key: str) -> list[UploadFile]:
    values = form.getall(key, []) if hasattr(form, "getall") else [form.get(key)]
    return [v for v in values if isinstance(v, UploadFile) and v.filename]


async def save_uploads(
    state: State,
    db: AsyncSession,
    task: PanelTask,
    participant_id: uuid.UUID,
    form: Any,
    client: Client,
) -> dict[str, str]:
    """Store every file of the form's filepickers; returns refusals by field key."""
    storage: DocumentStorage = state.document_storage
    scanner: Scanner = state.document_scanner
    settings = state.settings
    errors: dict[str, str] = {}
    sent = 0
    for component in filepickers(task.form_schema or {}):
        key = component["key"]
        for upload in uploads_in(form, key):
            sent += 1
            if sent > settings.document_max_files_per_request:
                errors[key] = _(
                    "Send at most %(n)s files at a time.", n=settings.document_max_files_per_request
                )
                break
            try:
                document = await store_upload(
                    db,
                    storage,
                    scanner,
                    task=task,
                    participant_id=participant_id,
                    field_key=key,
                    filename=upload.filename,
                    chunks=_chunks(upload),
                    limits=Limits(max_bytes=settings.document_max_bytes),
                )
            except UploadRefusedError as refused:
                errors[key] = str(refused)
                continue
            finally:
                await upload.close()
            audit.record(
                db,
                audit.DOCUMENT_UPLOADED,
                case_id=task.case_id,
                participant_id=participant_id,
                ip=client.ip,
                user_agent=client.user_agent,
                document=str(document.id),
                sha256=document.sha256,
                task=task.element_id,
            )
    return errors


async def filepicker_answers(
    db: AsyncSession, task: PanelTask, participant_id: uuid.UUID
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each filepicker's answer: the ids of the files uploaded to it (never their content)."""
    documents = await task_documents(db, task, participant_id)
    answers: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for component in filepickers(task.form_schema or {}):
        key = component["key"]
        ids = [str(d.id) for d in documents.get(key, [])]
        if ids:
            answers[key] = ids if component.get("multiple", True) else ids[-1:]
        elif (component.get("validate") or {}).get("required"):
            label = component.get("label") or key
            errors[key] = _("Add “%(label)s”.", label=label)
    return answers, errors
