"""Request-scoped dependencies: database session and the signed-in participant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession

SESSION_PARTICIPANT = "participant_id"
SESSION_CASE = "case_id"


@dataclass(frozen=True, slots=True)
class ParticipantContext:
    case_id: uuid.UUID
    participant_id: uuid.UUID


async def provide_db(state: State) -> AsyncGenerator[AsyncSession, None]:
    async with state.sessions() as session:
        yield session


def provide_participant(request: Request[Any, Any, Any]) -> ParticipantContext:
    """The participant the session belongs to; every participant route depends on it."""
    session = request.session if "session" in request.scope else {}
    try:
        return ParticipantContext(
            case_id=uuid.UUID(str(session[SESSION_CASE])),
            participant_id=uuid.UUID(str(session[SESSION_PARTICIPANT])),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise NotAuthorizedException("Sign in to your case to continue.") from exc
