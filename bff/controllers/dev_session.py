"""Demo-mode sign-in: opens a participant session without the SMS login.

It exists only when ``PANEL_DEMO_MODE`` is on, so the demo and the tests can act as a
participant before the case login is in place; the app does not register it otherwise.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from bff.dependencies import (
    SESSION_CASE,
    SESSION_CREATED,
    SESSION_LAST_SEEN,
    SESSION_PARTICIPANT,
)
from panel_core.db.models import Participant
from panel_web.session import ROTATE


class DevSessionController(Controller):
    path = "/dev"
    include_in_schema = False

    @get("/sign-in")
    async def sign_in_page(self, participant: FromQuery[str] = "") -> Template:
        return Template("dev_sign_in.html.j2", context={"participant": participant})

    @post("/sign-in")
    async def sign_in(
        self,
        request: Request[Any, Any, State],
        db: NamedDependency[AsyncSession],
        data: URLEncodedBody[dict[str, Any]],
    ) -> Redirect:
        try:
            participant_id = uuid.UUID(str(data.get("participant", "")).strip())
        except ValueError as exc:
            raise NotFoundException("Not found") from exc
        participant = await db.get(Participant, participant_id)
        if participant is None:
            raise NotFoundException("Not found")
        now = request.app.state.clock.now()
        request.set_session(
            {
                SESSION_PARTICIPANT: str(participant.id),
                SESSION_CASE: str(participant.case_id),
                SESSION_CREATED: now,
                SESSION_LAST_SEEN: now,
                ROTATE: True,
            }
        )
        return Redirect(path="/case/", status_code=303)

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, State]) -> Redirect:
        request.clear_session()
        return Redirect(path="/dev/sign-in", status_code=303)
