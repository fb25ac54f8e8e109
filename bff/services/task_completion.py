"""Completing a participant's task: validate, store, then try the engine once right away."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext
from bff.services.signing import check_signature
from panel_core.db.models import TaskState
from panel_core.engine.rest import DeliveryOutcome
from panel_core.forms import form_today
from panel_core.forms.checks import check_form
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import Client, ParticipantActor
from panel_core.notifications.live import TASKS_CHANGED, publish_case_update
from panel_core.tasks.completions import TaskNotOpenError, VariablesTooLargeError
from panel_core.tasks.consents import record_consents
from panel_core.tasks.service import get_participant_task
from panel_core.tasks.work import judge, send
from panel_core.variables import form_variables
from panel_web.uploads import uploaded_files

ANSWERS_TOO_LARGE = N_("Your answers are too long to send. Shorten them and try again.")


@dataclass(slots=True)
class CompletionResult:
    not_found: bool = False
    not_open: bool = False
    form_unsupported: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    state: str = ""
    delivered: bool = False


async def complete_participant_task(
    state: State,
    db: AsyncSession,
    participant: ParticipantContext,
    task_id: uuid.UUID,
    submitted: Mapping[str, Any],
    client: Client | None = None,
) -> CompletionResult:
    task = await get_participant_task(db, participant.case_id, participant.participant_id, task_id)
    if task is None:
        return CompletionResult(not_found=True)
    if task.state != TaskState.OPEN:
        return CompletionResult(not_open=True)
    schema = task.form_schema or {}
    if check_form(schema):
        # A form deployed around the panel's checks (e.g. from Camunda Modeler): answers
        # judged by rules the server cannot evaluate would be judged wrongly.
        return CompletionResult(form_unsupported=True)
    actor = ParticipantActor(participant.case_id, participant.participant_id)
    answers, errors = judge(
        task,
        submitted,
        variables=await form_variables(db, task),
        today=form_today(state.clock),
        files=await uploaded_files(db, task, participant.participant_id),
    )
    if errors:
        return CompletionResult(errors=errors)
    # Last, so a code is used up only when everything else on the page is right.
    signature, signature_errors = await check_signature(state, db, participant, task, submitted)
    if signature_errors:
        return CompletionResult(errors=signature_errors)
    # Leased from the start: this request delivers it right after the commit, and no
    # dispatcher takes it first (they do if this process dies before it is sent).
    lease = state.completions.new_lease()
    try:
        submission = await send(
            db,
            actor,
            task,
            answers,
            lease=lease,
            client=client,
            attach=(lambda stored: setattr(signature, "submission", stored)) if signature else None,
        )
    except TaskNotOpenError:
        await db.rollback()
        return CompletionResult(not_open=True)
    except VariablesTooLargeError:
        await db.rollback()
        # Named after the page's send button, which the error summary links to.
        return CompletionResult(errors={"send": gettext(ANSWERS_TOO_LARGE)})
    record_consents(db, task, participant.participant_id, answers)
    # Committed before the engine is called: a failed call loses nothing.
    try:
        await db.commit()
    except IntegrityError:
        # A parallel request stored its submission first.
        await db.rollback()
        return CompletionResult(not_open=True)
    await publish_case_update(state.redis, participant.case_id, TASKS_CHANGED)
    delivery = await state.completions.deliver_leased(submission.id, lease)
    return CompletionResult(
        state=TaskState.SUBMITTED.value,
        delivered=delivery is not None and delivery.outcome is DeliveryOutcome.DELIVERED,
    )
