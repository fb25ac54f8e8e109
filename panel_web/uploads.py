"""Files sent with a task form, or in place of a rejected document: stored as the
participant's documents as they arrive.

Uploads are kept even when other answers on the page have errors, so nobody uploads twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.audit import activity
from panel_core.audit import log as audit
from panel_core.db.models import Document, PanelTask, TaskState
from panel_core.documents.service import (
    Limits,
    UploadRefusedError,
    replace_document,
    store_upload,
    task_documents,
)
from panel_core.forms import input_components, localise
from panel_core.forms.files import accepted_types
from panel_core.forms.values import file_answer
from panel_core.i18n import gettext as _
from panel_core.identity.actors import Client
from panel_web.multipart import FilePart


def filepickers(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in input_components(schema) if c.get("type") == "filepicker"]


class UploadSaver:
    """Stores each file of a request's filepickers as it streams in (see panel_web.multipart).

    One per request; ``errors`` holds what was refused, by field key. Files for fields the
    task's form does not have, and every file once the task is not open, are not kept.
    """

    def __init__(
        self,
        state: State,
        db: AsyncSession,
        task: PanelTask | None,
        participant_id: uuid.UUID,
        client: Client,
    ) -> None:
        self._state = state
        self._db = db
        self._task = task if task is not None and task.state == TaskState.OPEN else None
        self._participant_id = participant_id
        self._client = client
        pickers = filepickers(task.form_schema or {}) if task else []
        self._keys = {c["key"] for c in pickers}
        # What each field's accept lets through, as the browser offered it.
        self._accepted = {c["key"]: accepted_types(c.get("accept")) for c in pickers}
        self._sent = 0
        self.errors: dict[str, str] = {}

    async def __call__(self, part: FilePart) -> None:
        task = self._task
        if task is None or part.name not in self._keys:
            return
        settings = self._state.settings
        self._sent += 1
        if self._sent > settings.document_max_files_per_request:
            self.errors[part.name] = _(
                "Send at most %(n)s files at a time.", n=settings.document_max_files_per_request
            )
            return
        try:
            document = await store_upload(
                self._db,
                self._state.document_storage,
                self._state.document_scanner,
                task=task,
                participant_id=self._participant_id,
                field_key=part.name,
                filename=part.filename,
                chunks=part.chunks,
                limits=Limits(max_bytes=settings.document_max_bytes),
                accepted=self._accepted.get(part.name),
            )
        except UploadRefusedError as refused:
            self.errors[part.name] = str(refused)
            return
        audit.record(
            self._db,
            audit.DOCUMENT_UPLOADED,
            case_id=task.case_id,
            participant_id=self._participant_id,
            ip=self._client.ip,
            user_agent=self._client.user_agent,
            document=str(document.id),
            sha256=document.sha256,
            task=task.element_id,
        )
        assert task.case_id is not None  # store_upload refuses a task outside a case
        activity.record(
            self._db,
            activity.DOCUMENT_UPLOADED,
            case_id=task.case_id,
            participant_id=self._participant_id,
        )


# The one file part of the form that replaces a rejected document.
REPLACEMENT_FIELD = "file"


class ReplacementSaver:
    """Stores the file of a replacement form in place of a rejected document as it streams
    in (see panel_web.multipart).

    One per request. Only the first part named ``file`` counts; nothing is kept of any other,
    nor of any file when ``rejected`` is None (the document is not the participant's).
    """

    def __init__(
        self,
        state: State,
        db: AsyncSession,
        rejected: Document | None,
        participant_id: uuid.UUID,
        client: Client,
    ) -> None:
        self._state = state
        self._db = db
        self._rejected = rejected
        self._participant_id = participant_id
        self._client = client
        self._tried = False
        self.document: Document | None = None
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        """Why no new document was kept, once the whole form is read; None if one was."""
        if self.document is not None:
            return None
        return self._error or _("Choose the file to send.")

    async def __call__(self, part: FilePart) -> None:
        rejected = self._rejected
        if rejected is None or part.name != REPLACEMENT_FIELD or self._tried:
            return
        self._tried = True
        settings = self._state.settings
        try:
            document = await replace_document(
                self._db,
                self._state.document_storage,
                self._state.document_scanner,
                rejected=rejected,
                participant_id=self._participant_id,
                filename=part.filename,
                chunks=part.chunks,
                limits=Limits(max_bytes=settings.document_max_bytes),
            )
        except UploadRefusedError as refused:
            self._error = str(refused)
            return
        self.document = document
        audit.record(
            self._db,
            audit.DOCUMENT_REPLACED,
            case_id=document.case_id,
            participant_id=self._participant_id,
            ip=self._client.ip,
            user_agent=self._client.user_agent,
            document=str(document.id),
            replaces=str(rejected.id),
            sha256=document.sha256,
        )
        activity.record(
            self._db,
            activity.DOCUMENT_REPLACED,
            case_id=document.case_id,
            participant_id=self._participant_id,
        )


async def uploaded_files(
    db: AsyncSession, task: PanelTask, participant_id: uuid.UUID
) -> dict[str, list[str]]:
    """The ids of the files uploaded to each of the task's filepickers (never their content),
    for :func:`panel_core.forms.read_submission` to judge with the rest of the answers."""
    documents = await task_documents(db, task, participant_id)
    return {key: [str(d.id) for d in found] for key, found in documents.items() if found}


async def filepicker_answers(
    db: AsyncSession, task: PanelTask, participant_id: uuid.UUID
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each filepicker's answer and, for a required one without files, its error, whatever
    the other answers (a sent form is judged by read_submission, which also knows what the
    answers hide)."""
    files = await uploaded_files(db, task, participant_id)
    answers: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for component in filepickers(localise(task.form_schema or {})):
        answer, error = file_answer(component, files.get(component["key"], []))
        if answer is not None:
            answers[component["key"]] = answer
        if error:
            errors[component["key"]] = error
    return answers, errors
