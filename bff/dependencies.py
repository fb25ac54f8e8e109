"""Request-scoped dependencies: database session and the signed-in participant."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.cases import closure
from panel_core.i18n import N_

SESSION_PARTICIPANT = "participant_id"
SESSION_CASE = "case_id"
SESSION_CREATED = "created_at"
SESSION_LAST_SEEN = "last_seen"
# Between the login steps the session holds only the attempt, which grants nothing.
SESSION_LOGIN = "login"

SESSION_ENDED = "Your session has ended. Sign in again to continue."
# Sent by the page's own background refreshes (live updates): they are not the person's
# activity and must not extend the session.
BACKGROUND_HEADER = "x-panel-background"


# A route's ``opt`` key naming what of a closed case it shows (closure.STATUS, DOCUMENTS or
# EVERYTHING, the default): after its case closes, a participant reaches only what the case
# type's afterClosure rule still shows them.
OPT_SHOWS = "panel_shows"
ACCESS_ENDED = N_("Access to this case has ended.")


@dataclass(frozen=True, slots=True)
class ParticipantContext:
    case_id: uuid.UUID
    participant_id: uuid.UUID
    # When the session ends if nothing else happens (epoch seconds), for the expiry warning.
    expires_at: float
    # What of the case they see: everything while it runs, the afterClosure rule's part then.
    shows: str = closure.EVERYTHING


# The database session the participant guard checked the case in, kept for the route's own
# queries: one pooled connection (one pre-ping, one transaction) per request instead of two.
_GUARD_DB = "panel_guard_db"


async def provide_db(request: Request[Any, Any, State]) -> AsyncGenerator[AsyncSession, None]:
    kept = request.state.get(_GUARD_DB)
    if isinstance(kept, AsyncSession):
        del request.state[_GUARD_DB]
        try:
            yield kept
        finally:
            await kept.close()
        return
    async with request.app.state.sessions() as session:
        yield session


def _asks_for_db(handler: BaseRouteHandler) -> bool:
    return "db" in handler.parsed_fn_signature.parameters


class GuardSessionCleanup(ASGIMiddleware):
    """Closes a session the guard kept when the route never took it (its request was refused
    after the guard, before the route ran)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        try:
            await next_app(scope, receive, send)
        finally:
            kept = scope.get("state", {}).pop(_GUARD_DB, None)
            if isinstance(kept, AsyncSession):
                await kept.close()


_CONTEXT_KEY = "panel_participant"


async def provide_participant(request: Request[Any, Any, State]) -> ParticipantContext:
    """The participant the session belongs to (checked by ``require_participant``, which
    runs here for a controller that does not list it as its guard)."""
    context = request.state.get(_CONTEXT_KEY)
    if isinstance(context, ParticipantContext):
        return context
    # Here, the route's dependencies may be resolved already: nothing is kept for them.
    await _check_participant(request, request.route_handler, keep_db=False)
    context = request.state[_CONTEXT_KEY]
    assert isinstance(context, ParticipantContext)
    return context


async def require_participant(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard of every participant route. Guards run before the body is read, so a request
    without a live session, or to a closed case's part the participant no longer sees, is
    refused before any of its body is parsed."""
    await _check_participant(connection, handler, keep_db=_asks_for_db(handler))


async def _check_participant(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, *, keep_db: bool
) -> None:
    context = participant_of(connection)
    now = datetime.fromtimestamp(connection.app.state.clock.now(), UTC)
    db: AsyncSession = connection.app.state.sessions()
    kept = False
    try:
        shows = await closure.case_access(db, context.case_id, now)
        if shows is None:
            # The access window ended (or the case is gone): as a signed-out visitor from now on.
            connection.clear_session()
            raise NotAuthorizedException(ACCESS_ENDED)
        if not closure.covers(shows, handler.opt.get(OPT_SHOWS, closure.EVERYTHING)):
            raise NotFoundException("Not found")
        connection.state[_CONTEXT_KEY] = dataclasses.replace(context, shows=shows)
        if keep_db:
            connection.state[_GUARD_DB] = db
            kept = True
    finally:
        if not kept:
            await db.close()


def participant_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ParticipantContext:
    """The participant the session belongs to, with the session's timeouts enforced.

    The idle and absolute timeouts are enforced here, on the server, whatever the cookie's
    own lifetime says.
    """
    request = connection
    session = request.session if "session" in request.scope else {}
    settings = request.app.state.settings
    now: float = request.app.state.clock.now()
    try:
        context = ParticipantContext(
            case_id=uuid.UUID(str(session[SESSION_CASE])),
            participant_id=uuid.UUID(str(session[SESSION_PARTICIPANT])),
            expires_at=0.0,
        )
        created, last_seen = float(session[SESSION_CREATED]), float(session[SESSION_LAST_SEEN])
    except (KeyError, ValueError, TypeError) as exc:
        raise NotAuthorizedException("Sign in to your case to continue.") from exc
    idle_end = last_seen + settings.session_idle_timeout_seconds
    absolute_end = created + settings.session_absolute_timeout_seconds
    if now >= idle_end or now >= absolute_end:
        request.clear_session()
        raise NotAuthorizedException(SESSION_ENDED)
    if request.headers.get(BACKGROUND_HEADER) != "1":
        session[SESSION_LAST_SEEN] = now
        idle_end = now + settings.session_idle_timeout_seconds
    return ParticipantContext(
        case_id=context.case_id,
        participant_id=context.participant_id,
        expires_at=min(idle_end, absolute_end),
    )


class ParticipantController(Controller):
    """Base of every controller of the participant's routes: signed in, own case only."""

    guards = [require_participant]  # noqa: RUF012 - Litestar reads class attributes
    dependencies = {"participant": Provide(provide_participant)}  # noqa: RUF012
