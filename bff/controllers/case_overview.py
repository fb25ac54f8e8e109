"""The page a participant lands on after signing in: their view of the whole case."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from bff.controllers.participant_pages import session_context
from bff.dependencies import OPT_SHOWS, ParticipantContext, ParticipantController
from panel_core.appointments.views import participant_appointments
from panel_core.cases import case_types, closure
from panel_core.cases.overview import build_overview
from panel_core.cases.service import get_case_with_participants
from panel_core.conversations.service import participant_unread
from panel_core.db.models import TaskState
from panel_core.identity.actors import ParticipantActor
from panel_core.tasks.signing import participant_signatures


class CaseOverviewController(ParticipantController):
    path = "/case"
    include_in_schema = False
    # After closure the page shows what the case type's rule leaves visible.
    opt = {OPT_SHOWS: closure.STATUS}  # noqa: RUF012 - Litestar reads class attributes

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        participant: NamedDependency[ParticipantContext],
    ) -> Template:
        # Where a replacement's form sends the participant back once the new file is kept.
        replaced = request.query_params.get("replaced") == "1"
        return await overview_page(request, db, participant, replaced=replaced)


async def overview_page(
    request: Request[Any, Any, State],
    db: AsyncSession,
    participant: ParticipantContext,
    *,
    replaced: bool = False,
    replacement_errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The overview; ``replacement_errors`` are refused replacements, by document id."""
    case = await get_case_with_participants(db, participant.case_id)
    if case is None:
        raise NotFoundException("Not found")
    descriptor = await case_types.of_case(db, case)
    overview = await build_overview(db, case, participant.participant_id, descriptor)
    settings = request.app.state.settings
    return Template(
        "overview.html.j2",
        context={
            "overview": overview,
            "open_tasks": overview.tasks_in(TaskState.OPEN),
            "submitted_tasks": overview.tasks_in(TaskState.SUBMITTED),
            "done_tasks": overview.tasks_in(TaskState.COMPLETED),
            "withdrawn_tasks": overview.tasks_in(TaskState.WITHDRAWN),
            "signed": [
                s
                for s in await participant_signatures(
                    db, participant.case_id, participant.participant_id
                )
                if s.content
            ],
            "appointments": await participant_appointments(
                db,
                participant.case_id,
                participant.participant_id,
                datetime.fromtimestamp(request.app.state.clock.now(), UTC),
            ),
            # Conversations with an answer the participant has not read.
            "unread_messages": await participant_unread(
                db, ParticipantActor(participant.case_id, participant.participant_id)
            ),
            # What of a closed case the participant still sees, and until when.
            "shows": participant.shows,
            "access_until": case.access_until if case.closed_at is not None else None,
            "replaced": replaced,
            "replacement_errors": dict(replacement_errors or {}),
            "document_max_mb": settings.document_max_bytes // (1024 * 1024),
            "participant_session": session_context(request, participant),
        },
        status_code=status_code,
    )
