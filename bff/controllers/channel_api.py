"""API through which the bank's channels (branch, internet banking, call centre) open cases.

Opening a case never waits for the engine: the case is committed with the command that
starts its process, and the answer carries the case number at once. The panel tries the
start straight away; if the engine is down or pushing back, the workers retry it with
backoff, and ``GET /api/channel/cases/{id}`` shows when the process runs.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_422_UNPROCESSABLE_ENTITY

from bff.schemas import CaseIn, CaseOut, CaseStateOut, ParticipantOut
from panel_core.cases.service import (
    CaseValidationError,
    IdempotencyConflictError,
    ParticipantRegistration,
    get_case_with_participants,
    open_case,
)
from panel_core.observability import log_context

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 255


def require_channel_token(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    expected: str = connection.app.state.channel_api_token
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Compared as bytes: compare_digest refuses str beyond ASCII, and a header may carry any.
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise NotAuthorizedException("A valid channel token is required.")


def channel_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guards run before the body is read: an unauthenticated request is refused unread."""
    require_channel_token(connection)


def _idempotency_key(request: Request[object, object, State]) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ClientException(
            detail=f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
        )
    return key


class ChannelApiController(Controller):
    path = "/api/channel"
    tags = ["channel"]  # noqa: RUF012 - Litestar reads class attributes
    guards = [channel_guard]  # noqa: RUF012

    @post("/cases", status_code=HTTP_201_CREATED)
    async def open_case(
        self, request: Request[object, object, State], data: JSONBody[CaseIn]
    ) -> Response[CaseOut]:
        """Open a case. With an ``Idempotency-Key`` header, sending the same request again
        (after a timeout, say) gives the same case, never a second one; the same key with a
        different request is refused with 422."""
        state = request.app.state
        lease = state.engine_commands.new_lease()
        try:
            opened = await open_case(
                state.sessions,
                case_type=data.case_type,
                participants=[
                    ParticipantRegistration(p.role, p.pesel, p.phone, p.locale, p.email)
                    for p in data.participants
                ],
                channel=data.channel,
                case_number_prefix=state.settings.case_number_prefix,
                hash_key=state.settings.hash_key,
                fragment_length=state.settings.pesel_fragment_length,
                idempotency_key=_idempotency_key(request),
                start_lease=lease,
            )
        except CaseValidationError as exc:
            raise ClientException(detail=str(exc)) from exc
        except IdempotencyConflictError as exc:
            raise ClientException(
                detail="This Idempotency-Key was used for a different request.",
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            ) from exc
        instance_key = opened.process_instance_key
        with log_context(case_id=opened.case_id):
            if opened.start_command_id is not None:
                # One attempt now; the workers retry it if the engine cannot take it yet.
                result = await state.engine_commands.deliver_leased(opened.start_command_id, lease)
                instance_key = result.process_instance_key if result is not None else None
        return Response(
            CaseOut(
                case_id=opened.case_id,
                case_number=opened.case_number,
                process_instance_key=str(instance_key) if instance_key else None,
                participants=[
                    ParticipantOut(participant_id=pid, role=role)
                    for pid, role in opened.participants
                ],
            ),
            status_code=HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if opened.replayed else None,
        )

    @get("/cases/{case_id:uuid}")
    async def case_state(
        self, request: Request[object, object, State], case_id: FromPath[uuid.UUID]
    ) -> CaseStateOut:
        """Where a case stands: its business status and whether its process runs."""
        async with request.app.state.sessions() as session:
            case = await get_case_with_participants(session, case_id)
        if case is None:
            raise NotFoundException("Not found")
        return CaseStateOut(
            case_id=case.id,
            case_number=case.case_number,
            case_type=case.case_type,
            status=case.status,
            process_instance_key=(
                str(case.process_instance_key) if case.process_instance_key else None
            ),
            participants=[
                ParticipantOut(participant_id=p.id, role=p.role) for p in case.participants
            ],
        )
