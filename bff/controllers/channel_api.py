"""API through which the bank's channels (branch, internet banking, call centre) open cases."""

from __future__ import annotations

import hmac

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotAuthorizedException, ServiceUnavailableException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from bff.schemas import CaseIn, CaseOut, ParticipantOut
from panel_core.cases import CaseValidationError, ParticipantRegistration, start_case
from panel_core.engine.rest import EngineRejectedError, EngineUnavailableError


def require_channel_token(request: Request[object, object, State]) -> None:
    expected: str = request.app.state.channel_api_token
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token, expected):
        raise NotAuthorizedException("A valid channel token is required.")


class ChannelApiController(Controller):
    path = "/api/channel"
    tags = ["channel"]  # noqa: RUF012 - Litestar reads class attributes

    @post("/cases", status_code=HTTP_201_CREATED)
    async def open_case(
        self, request: Request[object, object, State], data: JSONBody[CaseIn]
    ) -> CaseOut:
        require_channel_token(request)
        state = request.app.state
        try:
            started = await start_case(
                state.sessions,
                state.engine,
                case_type=data.case_type,
                participants=[
                    ParticipantRegistration(p.role, p.pesel, p.phone, p.locale)
                    for p in data.participants
                ],
                channel=data.channel,
                case_number_prefix=state.settings.case_number_prefix,
                hash_key=state.settings.hash_key,
                fragment_length=state.settings.pesel_fragment_length,
            )
        except CaseValidationError as exc:
            raise ClientException(detail=str(exc)) from exc
        except EngineUnavailableError as exc:
            raise ServiceUnavailableException(
                "The process engine is unavailable; no case was opened. Try again shortly."
            ) from exc
        except EngineRejectedError as exc:
            raise ServiceUnavailableException(
                "The process engine refused to start the case; no case was opened."
            ) from exc
        return CaseOut(
            case_id=started.case_id,
            case_number=started.case_number,
            process_instance_key=str(started.process_instance_key),
            participants=[
                ParticipantOut(participant_id=pid, role=role) for pid, role in started.participants
            ],
        )
