"""Signing in through the bank's identity provider, and out of both."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.appointments.calendar import remember_member
from panel_core.audit import log as audit
from panel_web.locale import safe_return_path
from panel_web.request import client_of
from panel_web.session import ROTATE
from staff.dependencies import (
    SESSION_CREATED,
    SESSION_ID_TOKEN,
    SESSION_LAST_SEEN,
    SESSION_SIGN_IN,
    SESSION_STAFF,
    StaffServices,
    actor_session,
    staff_of,
)
from staff.oidc import PendingSignIn, SignInError

log = logging.getLogger(__name__)


class AuthController(Controller):
    include_in_schema = False

    @get("/login")
    async def login(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[StaffServices],
        next: FromQuery[str] = "/",
    ) -> Redirect:
        url, pending = await services.oidc.begin(safe_return_path(next))
        request.set_session({SESSION_SIGN_IN: pending.as_dict(), ROTATE: True})
        return Redirect(url, status_code=303)

    @get("/auth/callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[StaffServices],
        db: NamedDependency[AsyncSession],
        # "state" is a name Litestar reserves for the application state.
        returned_state: Annotated[str, QueryParameter(name="state")] = "",
        code: FromQuery[str] = "",
        error: FromQuery[str] = "",
    ) -> Redirect | Template:
        pending = PendingSignIn.from_dict(request.session.get(SESSION_SIGN_IN))
        if pending is None or error or not code:
            # Back from the provider without a sign-in this browser began (or refused there).
            log.warning("staff sign-in not completed: %s", error or "no pending sign-in")
            return Template("staff/signed_out.html.j2", context={"failed": True}, status_code=400)
        try:
            signed_in = await services.oidc.complete(pending, state=returned_state, code=code)
        except SignInError as exc:
            log.warning("staff sign-in refused: %s", exc)
            return Template("staff/signed_out.html.j2", context={"failed": True}, status_code=400)
        now = services.clock.now()
        request.set_session(
            {
                SESSION_STAFF: actor_session(signed_in.actor),
                SESSION_ID_TOKEN: signed_in.id_token,
                SESSION_CREATED: now,
                SESSION_LAST_SEEN: now,
                ROTATE: True,
            }
        )
        client = client_of(request)
        audit.record(
            db,
            audit.STAFF_SIGNED_IN,
            actor=signed_in.actor,
            client=client,
        )
        # Whose calendars a team manager sees: the groups as the provider gave them now.
        await remember_member(db, signed_in.actor, datetime.fromtimestamp(now, UTC))
        await db.commit()
        return Redirect(pending.return_to, status_code=303)

    @post("/logout")
    async def logout(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[StaffServices],
        db: NamedDependency[AsyncSession],
    ) -> Redirect:
        id_token = str(request.session.get(SESSION_ID_TOKEN) or "")
        try:
            actor = staff_of(request)
        except Exception:
            actor = None
        request.clear_session()
        if actor is not None:
            client = client_of(request)
            audit.record(db, audit.STAFF_SIGNED_OUT, actor=actor, client=client)
            await db.commit()
        back = f"{services.settings.staff_public_base_url.rstrip('/')}/signed-out"
        # The provider's session ends too, or the next sign-in would pass without a password.
        url = await services.oidc.end_session_url(id_token, back) if id_token else None
        return Redirect(url or "/signed-out", status_code=303)

    @get("/signed-out")
    async def signed_out(self) -> Template:
        return Template("staff/signed_out.html.j2", context={"failed": False})
