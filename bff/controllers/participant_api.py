"""JSON API of the participant panel; every route is scoped to the session's participant."""

from __future__ import annotations

import uuid

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import ParticipantContext, ParticipantController
from bff.schemas import CompletionIn, CompletionOut, TaskDetailOut, TaskOut
from bff.services.task_completion import complete_participant_task
from panel_core.db.models import PanelTask
from panel_core.tasks.service import (
    TaskSummary,
    get_participant_task,
    list_participant_task_summaries,
)
from panel_core.variables import form_variables
from panel_web.request import client_of

NOT_FOUND = "Not found"
FORM_UNSUPPORTED = (
    "This form uses rules the panel cannot check, so it cannot be sent here. The bank has "
    "been told."
)


def to_out(task: PanelTask | TaskSummary) -> TaskOut:
    return TaskOut(
        id=task.id,
        name=task.name,
        element_id=task.element_id,
        state=task.state.value,
        form_id=task.form_id,
        due_date=task.due_date,
        priority=task.priority,
        created_at=task.created_at,
    )


class ParticipantApiController(ParticipantController):
    path = "/api/participant"
    tags = ["participant"]  # noqa: RUF012 - Litestar reads class attributes

    @get("/tasks")
    async def list_tasks(
        self, db: NamedDependency[AsyncSession], participant: NamedDependency[ParticipantContext]
    ) -> list[TaskOut]:
        tasks = await list_participant_task_summaries(
            db, participant.case_id, participant.participant_id
        )
        return [to_out(task) for task in tasks]

    @get("/tasks/{task_id:uuid}")
    async def get_task(
        self,
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
    ) -> TaskDetailOut:
        task = await get_participant_task(
            db, participant.case_id, participant.participant_id, task_id
        )
        if task is None:
            raise NotFoundException(NOT_FOUND)
        out = to_out(task)
        return TaskDetailOut(
            **{f: getattr(out, f) for f in out.__struct_fields__},
            form_schema=task.form_schema,
            variables=await form_variables(db, task),
        )

    @post("/tasks/{task_id:uuid}/completion", status_code=HTTP_202_ACCEPTED)
    async def complete_task(
        self,
        request: Request[object, object, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
        task_id: FromPath[uuid.UUID],
        data: JSONBody[CompletionIn],
    ) -> CompletionOut:
        outcome = await complete_participant_task(
            request.app.state, db, participant, task_id, data.variables, client_of(request)
        )
        if outcome.not_found:
            raise NotFoundException(NOT_FOUND)
        if outcome.form_unsupported:
            raise ClientException(detail=FORM_UNSUPPORTED, status_code=409)
        if outcome.errors:
            raise ClientException(
                detail="The answers are not valid.", extra={"errors": outcome.errors}
            )
        if outcome.not_open:
            raise ClientException(detail="This task has already been submitted.", status_code=409)
        return CompletionOut(task_id=task_id, state=outcome.state, delivered=outcome.delivered)
