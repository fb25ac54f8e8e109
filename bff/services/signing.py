"""The signing step of a task: the document shown, the code sent, the code checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext
from panel_core.cases import case_types
from panel_core.cases.service import get_case_with_participants
from panel_core.db.models import Case, PanelTask, Participant, SignatureRecord
from panel_core.i18n import gettext as _
from panel_core.identity.attempts import AttemptStore
from panel_core.tasks.signing import (
    SignableDocument,
    SigningCodes,
    application_document,
    record_signature,
    signature_components,
)

# Names of the panel's own signing controls on a task page (not fields of the form).
SIGNING_CODE_FIELD = "signingCode"
DOCUMENT_HASH_FIELD = "documentSha256"


def signing_codes(state: State) -> SigningCodes:
    return SigningCodes(state.settings, AttemptStore(state.redis), state.clock)


@dataclass(frozen=True, slots=True)
class SigningContext:
    case: Case
    participant: Participant
    document: SignableDocument


async def signing_context(
    db: AsyncSession, participant: ParticipantContext
) -> SigningContext | None:
    case = await get_case_with_participants(db, participant.case_id)
    if case is None:
        return None
    person = next((p for p in case.participants if p.id == participant.participant_id), None)
    if person is None:
        return None
    descriptor = await case_types.of_case(db, case)
    document = await application_document(db, descriptor, case, person)
    return SigningContext(case, person, document)


async def check_signature(
    state: State,
    db: AsyncSession,
    participant: ParticipantContext,
    task: PanelTask,
    submitted: Mapping[str, Any],
) -> tuple[SignatureRecord | None, dict[str, str]]:
    """The signature the submission carries, or errors by field if the task needs one.

    The document is rebuilt here, on the server: the code must match *this* document, and
    the hash the page showed must still be its hash. The record keeps those exact bytes.
    """
    components = signature_components(task.form_schema or {})
    if not components:
        return None, {}
    context = await signing_context(db, participant)
    if context is None:
        return None, {SIGNING_CODE_FIELD: _("The document to sign is not available.")}
    shown = str(submitted.get(DOCUMENT_HASH_FIELD) or "")
    if shown and shown != context.document.sha256:
        return None, {
            SIGNING_CODE_FIELD: _(
                "The document has changed since you opened this page. Read it again and ask "
                "for a new code."
            )
        }
    code = str(submitted.get(SIGNING_CODE_FIELD) or "").strip()
    if not code:
        return None, {SIGNING_CODE_FIELD: _("Enter the code from the text message.")}
    outcome = await signing_codes(state).verify(
        participant.participant_id, task.id, context.document.sha256, code
    )
    if not outcome.signed:
        return None, {SIGNING_CODE_FIELD: outcome.message}
    record = record_signature(
        db,
        case=context.case,
        participant=context.participant,
        task=task,
        document=context.document,
        signed_keys=[c["key"] for c in components],
    )
    return record, {}
