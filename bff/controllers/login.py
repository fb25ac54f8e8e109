"""Login to the case: case number and PESEL fragment, then the code from the SMS.

Every answer before the code is accepted is the same whether or not the case or the person
exists, and takes at least the same time (``login_min_response_seconds``).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from redis.exceptions import RedisError

from bff.dependencies import (
    SESSION_CASE,
    SESSION_CREATED,
    SESSION_LAST_SEEN,
    SESSION_LOGIN,
    SESSION_PARTICIPANT,
)
from panel_core.audit import log as audit
from panel_core.cases.numbers import normalize_case_number
from panel_core.i18n import N_, gettext, ngettext
from panel_core.identity.actors import Client
from panel_core.identity.service import LoginResult, LoginService, Outcome
from panel_core.metrics import LOGIN_OUTCOMES
from panel_web.locale import language_cookie
from panel_web.session import ROTATE

T = TypeVar("T")
CASE_NUMBER_SHAPE = re.compile(r"^[A-Z]{2,6}-\d{4}-\d{8}$")
MAX_FIELD = 64

WRONG = N_("The details or the code are not correct, or the code has expired.")
UNAVAILABLE = N_("Signing in is temporarily unavailable. Please try again in a few minutes.")
RATE_LIMITED = N_("Too many attempts. Please wait a few minutes and try again.")
TOO_MANY_CODES = N_("You have asked for too many codes. Please wait 15 minutes and try again.")
ALREADY_USED = N_("This code has already been used.")
BLOCKED = N_(
    "Access to this case is blocked after too many wrong codes. Call the bank to have it unlocked."
)
SENT = N_(
    "If the details match a case, we have sent a code by SMS to the phone number the bank "
    "has for you."
)


def _client(request: Request[Any, Any, State]) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _locked_message(result: LoginResult) -> str:
    if result.until_unlocked:
        return gettext(BLOCKED)
    minutes = max(1, (result.locked_seconds + 59) // 60)
    return ngettext(
        "Access to this case is locked for %(num)s more minute after too many wrong codes. "
        "Call the bank if you need it unlocked sooner.",
        "Access to this case is locked for %(num)s more minutes after too many wrong codes. "
        "Call the bank if you need it unlocked sooner.",
        minutes,
    )


def _warning(result: LoginResult, lock_seconds: int) -> str | None:
    if result.attempts_before_lock is None:
        return None
    minutes = lock_seconds // 60
    return ngettext(
        "After %(num)s more wrong code access to this case will be locked for %(minutes)s minutes.",
        "After %(num)s more wrong codes access to this case will be locked for %(minutes)s "
        "minutes.",
        result.attempts_before_lock,
        minutes=minutes,
    )


async def _at_least(seconds: float, action: Callable[[], Awaitable[T]]) -> T:
    started = time.monotonic()
    try:
        return await action()
    finally:
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))


async def _login_step(seconds: float, action: Callable[[], Awaitable[LoginResult]]) -> LoginResult:
    """One step of the login, as slow as the slowest answer, counted by its outcome."""
    try:
        result = await _at_least(seconds, action)
    except RedisError:
        LOGIN_OUTCOMES.labels("unavailable").inc()
        raise
    LOGIN_OUTCOMES.labels(result.outcome.value).inc()
    return result


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value[:MAX_FIELD] if isinstance(value, str) else ""


class LoginController(Controller):
    path = "/login"
    include_in_schema = False

    def _service(self, request: Request[Any, Any, State]) -> LoginService:
        service: LoginService = request.app.state.login
        return service

    def _login_page(
        self,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        message: str | None = None,
        status_code: int = 200,
    ) -> Template:
        return Template(
            "login.html.j2",
            context={
                "values": values,
                "errors": errors or {},
                "message": gettext(message) if message else None,
            },
            status_code=status_code,
        )

    def _code_page(
        self, *, message: str | None = None, warning: str | None = None, status_code: int = 200
    ) -> Template:
        return Template(
            "login_code.html.j2",
            context={
                "message": gettext(message) if message else None,
                "warning": warning,
                "is_error": message == WRONG,
            },
            status_code=status_code,
        )

    def _sign_in(self, request: Request[Any, Any, State], result: LoginResult) -> Redirect:
        now = request.app.state.clock.now()
        request.set_session(
            {
                SESSION_PARTICIPANT: str(result.participant_id),
                SESSION_CASE: str(result.case_id),
                SESSION_CREATED: now,
                SESSION_LAST_SEEN: now,
                ROTATE: True,
            }
        )
        # The language the bank registered for the person, until they choose another.
        cookies = (
            [language_cookie(result.locale, secure=request.app.state.settings.secure_cookies)]
            if result.locale
            else []
        )
        return Redirect(path="/case/", status_code=303, cookies=cookies)

    @get("/")
    async def login_page(self, case: FromQuery[str] = "", code: FromQuery[str] = "") -> Template:
        return self._login_page(values={"case": case[:MAX_FIELD], "code": code[:MAX_FIELD]})

    @post("/")
    async def submit_identity(
        self, request: Request[Any, Any, State], data: URLEncodedBody[dict[str, Any]]
    ) -> Template | Redirect:
        settings = request.app.state.settings
        values = {
            "case": _field(data, "case"),
            "fragment": _field(data, "fragment"),
            "code": _field(data, "code"),
        }
        errors: dict[str, str] = {}
        case_number = normalize_case_number(values["case"])
        fragment = values["fragment"].strip()
        if not CASE_NUMBER_SHAPE.match(case_number):
            errors["case"] = gettext(
                "Enter the case number as it appears in your SMS, e.g. KR-2026-12345678."
            )
        n = settings.pesel_fragment_length
        if not (len(fragment) == n and fragment.isascii() and fragment.isdigit()):
            errors["fragment"] = gettext("Enter the last %(n)s digits of your PESEL number.", n=n)
        if values["code"] and not (values["code"].isascii() and values["code"].strip().isdigit()):
            errors["code"] = gettext("Enter the code from the SMS: digits only.")
        if errors:
            return self._login_page(values=values, errors=errors, status_code=400)

        service = self._service(request)
        client = _client(request)

        async def act() -> LoginResult:
            if values["code"]:
                return await service.verify_invitation(
                    case_number, fragment, values["code"], client
                )
            return await service.start(case_number, fragment, client)

        try:
            result = await _login_step(settings.login_min_response_seconds, act)
        except RedisError:
            return self._login_page(values=values, message=UNAVAILABLE, status_code=503)
        if result.outcome is Outcome.SIGNED_IN:
            return self._sign_in(request, result)
        if result.outcome is Outcome.CODE_SENT:
            request.set_session(
                {
                    SESSION_LOGIN: {"attempt": result.attempt_id, "identity": result.identity},
                    ROTATE: True,
                }
            )
            return Redirect(path="/login/code", status_code=303)
        values = {**values, "code": ""}
        if result.outcome is Outcome.ALREADY_USED:
            return self._login_page(values=values, message=ALREADY_USED, status_code=409)
        if result.outcome is Outcome.LOCKED:
            return self._login_page(values=values, message=_locked_message(result), status_code=423)
        if result.outcome is Outcome.RATE_LIMITED:
            return self._login_page(values=values, message=RATE_LIMITED, status_code=429)
        if result.outcome is Outcome.TOO_MANY_CODES:
            return self._login_page(values=values, message=TOO_MANY_CODES, status_code=429)
        warning = _warning(result, settings.login_lock_seconds)
        return self._login_page(
            values=values, message=WRONG + (f" {warning}" if warning else ""), status_code=400
        )

    @get("/code")
    async def code_page(self, request: Request[Any, Any, State]) -> Template | Redirect:
        if SESSION_LOGIN not in request.session:
            return Redirect(path="/login", status_code=303)
        return self._code_page(message=SENT)

    @post("/code")
    async def submit_code(
        self, request: Request[Any, Any, State], data: URLEncodedBody[dict[str, Any]]
    ) -> Template | Redirect:
        pending = request.session.get(SESSION_LOGIN)
        if not isinstance(pending, dict):
            return Redirect(path="/login", status_code=303)
        settings = request.app.state.settings
        code = _field(data, "code").strip()
        service = self._service(request)

        async def act() -> LoginResult:
            return await service.verify_code(
                str(pending.get("attempt", "")),
                str(pending.get("identity", "")),
                code,
                _client(request),
            )

        try:
            result = await _login_step(settings.login_min_response_seconds, act)
        except RedisError:
            return self._code_page(message=UNAVAILABLE, status_code=503)
        if result.outcome is Outcome.SIGNED_IN:
            return self._sign_in(request, result)
        if result.outcome is Outcome.LOCKED:
            request.clear_session()
            return self._login_page(values={}, message=_locked_message(result), status_code=423)
        if result.outcome is Outcome.ALREADY_USED:
            # Typically the second of a double submission: the first one signed in.
            return self._code_page(message=ALREADY_USED, status_code=409)
        if result.outcome is Outcome.RATE_LIMITED:
            return self._code_page(message=RATE_LIMITED, status_code=429)
        return self._code_page(
            message=WRONG, warning=_warning(result, settings.login_lock_seconds), status_code=400
        )

    @post("/resend")
    async def resend(self, request: Request[Any, Any, State]) -> Template | Redirect:
        pending = request.session.get(SESSION_LOGIN)
        if not isinstance(pending, dict):
            return Redirect(path="/login", status_code=303)
        settings = request.app.state.settings
        service = self._service(request)

        async def act() -> LoginResult:
            return await service.resend(
                str(pending.get("attempt", "")), str(pending.get("identity", "")), _client(request)
            )

        try:
            result = await _login_step(settings.login_min_response_seconds, act)
        except RedisError:
            return self._code_page(message=UNAVAILABLE, status_code=503)
        if result.outcome is Outcome.CODE_SENT:
            return self._code_page(message=SENT)
        if result.outcome is Outcome.LOCKED:
            request.clear_session()
            return self._login_page(values={}, message=_locked_message(result), status_code=423)
        if result.outcome is Outcome.TOO_MANY_CODES:
            return self._code_page(message=TOO_MANY_CODES, status_code=429)
        if result.outcome is Outcome.RATE_LIMITED:
            return self._code_page(message=RATE_LIMITED, status_code=429)
        request.clear_session()
        return self._login_page(values={}, message=WRONG, status_code=400)


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, State]) -> Template:
    participant = request.session.get(SESSION_PARTICIPANT)
    case = request.session.get(SESSION_CASE)
    request.clear_session()
    if participant and case:
        async with request.app.state.sessions() as session:
            audit.record(
                session,
                audit.LOGOUT,
                case_id=uuid.UUID(str(case)),
                participant_id=uuid.UUID(str(participant)),
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
            await session.commit()
    return Template(
        "login.html.j2",
        context={"values": {}, "errors": {}, "message": gettext("You have signed out.")},
    )
