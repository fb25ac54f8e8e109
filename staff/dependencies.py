"""The staff dashboard's typed dependencies: its services, the database, the signed-in
member of staff (a guard, checked before any body is read)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.clock import Clock
from panel_core.db.models import EngineCommand, TaskSubmission
from panel_core.documents.storage import DocumentStorage
from panel_core.engine.commands import CommandResult
from panel_core.engine.rest import CamundaRestClient, Delivery
from panel_core.identity.actors import StaffActor
from panel_core.outbox.dispatcher import Outbox
from panel_core.settings import Settings
from staff.oidc import OidcClient

SESSION_STAFF = "staff"
SESSION_ID_TOKEN = "id_token"  # noqa: S105 - the name of a session key
SESSION_CREATED = "created_at"
SESSION_LAST_SEEN = "last_seen"
# Between sending the browser to the identity provider and its return: grants nothing.
SESSION_SIGN_IN = "oidc"
# Sent by the pages' own background refreshes: not the person's activity.
BACKGROUND_HEADER = "x-panel-background"
SIGN_IN_REQUIRED = "Sign in to continue."
SESSION_ENDED = "Your session has ended. Sign in again to continue."


@dataclass(frozen=True, slots=True)
class StaffServices:
    settings: Settings
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    engine: CamundaRestClient
    completions: Outbox[TaskSubmission, Delivery]
    commands: Outbox[EngineCommand, CommandResult]
    oidc: OidcClient
    storage: DocumentStorage


def services_provider(services: StaffServices) -> Provide:
    def provide() -> StaffServices:
        return services

    return Provide(provide, sync_to_thread=False)


async def provide_db(
    services: NamedDependency[StaffServices],
) -> AsyncGenerator[AsyncSession, None]:
    async with services.sessions() as session:
        yield session


def _actor(data: Any) -> StaffActor:
    return StaffActor(
        subject=str(data["subject"]),
        username=str(data["username"]),
        name=str(data["name"]),
        groups=frozenset(str(g) for g in data["groups"]),
        roles=frozenset(str(r) for r in data["roles"]),
        manager=bool(data["manager"]),
    )


def actor_session(actor: StaffActor) -> dict[str, Any]:
    return {
        "subject": actor.subject,
        "username": actor.username,
        "name": actor.name,
        "groups": sorted(actor.groups),
        "roles": sorted(actor.roles),
        "manager": actor.manager,
    }


_ACTOR_KEY = "panel_staff"


def staff_of(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffActor:
    """The signed-in member of staff, with the session's timeouts enforced on the server."""
    session = connection.session if "session" in connection.scope else {}
    services: StaffServices = connection.app.state.services
    settings = services.settings
    now = services.clock.now()
    try:
        actor = _actor(session[SESSION_STAFF])
        created, last_seen = float(session[SESSION_CREATED]), float(session[SESSION_LAST_SEEN])
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAuthorizedException(SIGN_IN_REQUIRED) from exc
    if (
        now >= last_seen + settings.staff_session_idle_timeout_seconds
        or now >= created + settings.staff_session_absolute_timeout_seconds
    ):
        connection.clear_session()
        raise NotAuthorizedException(SESSION_ENDED)
    if connection.headers.get(BACKGROUND_HEADER) != "1":
        session[SESSION_LAST_SEEN] = now
    return actor


def require_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    connection.state[_ACTOR_KEY] = staff_of(connection)


def guarded_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffActor | None:
    """The member of staff the guard let through, if a guarded route is being served."""
    actor = connection.state.get(_ACTOR_KEY)
    return actor if isinstance(actor, StaffActor) else None


def provide_staff(request: Request[Any, Any, Any]) -> StaffActor:
    actor = request.state.get(_ACTOR_KEY)
    return actor if isinstance(actor, StaffActor) else staff_of(request)


class StaffController(Controller):
    """Base of every controller of the dashboard's signed-in pages."""

    guards = [require_staff]  # noqa: RUF012 - Litestar reads class attributes
    dependencies = {"staff": Provide(provide_staff, sync_to_thread=False)}  # noqa: RUF012
