"""Logging in to a case: every rule of the participant access, against real Redis."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import DEMO_CHANNEL_TOKEN, create_app
from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.clock import FakeClock, SystemClock
from panel_core.db.models import AuditEvent, SmsMessage
from panel_core.identity.actors import Client
from panel_core.identity.attempts import Attempt, AttemptStore
from panel_core.identity.service import LoginService, Outcome, participant_identity
from panel_core.notifications.invitations import invite_participant
from panel_web.locale import LANGUAGE_COOKIE
from tests import credit
from tests.conftest import Stack
from tests.helpers import csrf_token, eventually, form_token, person
from tests.sms_inbox import code_in, messages_to, next_message

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

Factory = Callable[..., AbstractAsyncContextManager[AsyncTestClient[Any]]]


@pytest.fixture
def clients(stack: Stack) -> Factory:
    @asynccontextmanager
    async def make(
        clock: FakeClock | None = None, base_url: str = "http://testserver.local", **overrides: Any
    ) -> AsyncIterator[AsyncTestClient[Any]]:
        settings = msgspec.structs.replace(stack.settings, **overrides)
        async with AsyncTestClient(create_app(settings, clock=clock), base_url=base_url) as client:
            # These tests read the English texts; the Polish default is covered by
            # test_i18n.py, test_case_panel.py and the browser tests.
            client.cookies.set(LANGUAGE_COOKIE, "en")
            yield client

    return make


async def open_case(
    clients: Factory, co_borrowers: int = 1
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    people = [person(credit.ROLE_PRIMARY_BORROWER, 0)] + [
        person(credit.ROLE_CO_BORROWER, i + 1, locale="en") for i in range(co_borrowers)
    ]
    async with clients() as client:
        response = await client.post(
            "/api/channel/cases",
            json={"caseType": credit.CASE_TYPE_CREDIT, "participants": people},
            headers={"authorization": f"Bearer {DEMO_CHANNEL_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    return response.json(), people


async def invited(stack: Stack, who: dict[str, str]) -> str:
    """Wait for the invitation SMS the process sends, and return it."""
    return await next_message(stack.settings.redis_url, who["phone"], 0, within=60)


async def step_one(client: AsyncTestClient[Any], case_number: str, fragment: str) -> httpx.Response:
    # As a browser does: the token comes from the form's hidden field.
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={"case": case_number, "fragment": fragment, "_csrf_token": form_token(page.text)},
        follow_redirects=False,
    )


async def step_two(client: AsyncTestClient[Any], code: str) -> httpx.Response:
    return await client.post(
        "/login/code",
        data={"code": code, "_csrf_token": csrf_token(client)},
        follow_redirects=False,
    )


async def invitation_login(
    client: AsyncTestClient[Any], case_number: str, fragment: str, code: str
) -> httpx.Response:
    return await client.post(
        "/login",
        data={
            "case": case_number,
            "fragment": fragment,
            "code": code,
            "_csrf_token": csrf_token(client),
        },
        follow_redirects=False,
    )


async def resend(client: AsyncTestClient[Any]) -> httpx.Response:
    return await client.post(
        "/login/resend", data={"_csrf_token": csrf_token(client)}, follow_redirects=False
    )


async def login_code(
    stack: Stack, client: AsyncTestClient[Any], case: dict[str, Any], who: dict[str, str]
) -> str:
    """Step one, then the code from the SMS that step one sent."""
    seen = len(await messages_to(stack.settings.redis_url, who["phone"]))
    response = await step_one(client, case["caseNumber"], who["pesel"][-4:])
    assert response.status_code == 303 and response.headers["location"] == "/login/code"
    return code_in(await next_message(stack.settings.redis_url, who["phone"], seen))


def signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers.get("location") == "/case/"


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_participant_signs_in_with_case_number_fragment_and_sms_code(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients)
    primary = people[0]
    invitation = await invited(stack, primary)
    assert case["caseNumber"] in invitation and "/login?" in invitation
    async with clients() as client:
        code = await login_code(stack, client, case, primary)
        page = await client.get("/login/code")
        assert "we have sent a code by SMS" in page.text
        assert signed_in(await step_two(client, code))

        async def own_tasks() -> list[dict[str, Any]] | None:
            listed = (await client.get("/api/participant/tasks")).json()
            return listed if len(listed) == 3 else None

        tasks = await eventually(own_tasks, within=60)
        assert {t["elementId"] for t in tasks} == {
            credit.ELEMENT_TASK_CONSENTS,
            credit.ELEMENT_TASK_INCOME,
            credit.ELEMENT_TASK_QUESTIONNAIRE,
        }


async def test_the_invitation_link_signs_in_once_and_a_redelivered_job_sends_nothing(
    stack: Stack, clients: Factory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case, people = await open_case(clients)
    co = people[1]
    text = await invited(stack, co)
    link = re.search(r"https?://\S+", text)
    assert link, text
    url = httpx.URL(link.group(0))
    assert url.path == "/login" and url.params["case"] == case["caseNumber"]
    code = url.params["code"]

    participant_id = uuid.UUID(case["participants"][1]["participantId"])
    login = LoginService(stack.settings, sessions, _redis(stack), SystemClock())
    # The same job delivered again: no second SMS, and the code from the first stays valid.
    again = await invite_participant(
        stack.settings,
        sessions,
        login,
        case_id=uuid.UUID(case["caseId"]),
        participant_id=participant_id,
    )
    assert again is False
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(SmsMessage).where(
                    SmsMessage.participant_id == participant_id,
                    SmsMessage.purpose == c.SMS_INVITATION,
                )
            )
        ).all()
    assert len(rows) == 1
    assert len(await messages_to(stack.settings.redis_url, co["phone"])) == 1

    async with clients() as client:
        form = await client.get(f"/login?{url.query.decode()}")
        assert f'value="{code}"' in form.text and f'value="{case["caseNumber"]}"' in form.text
        response = await invitation_login(client, case["caseNumber"], co["pesel"][-4:], code)
        assert signed_in(response), response.text
    async with clients() as client:
        await client.get("/login")
        # People open an invitation link twice: the used code says so, and is no wrong guess.
        for _ in range(stack.settings.login_max_failures + 1):
            reused = await invitation_login(client, case["caseNumber"], co["pesel"][-4:], code)
            assert reused.status_code == 409
            assert "This code has already been used." in reused.text
    assert await _failures(stack, case["participants"][1]["participantId"]) == 0


def _redis(stack: Stack) -> Redis:
    return Redis.from_url(stack.settings.redis_url)


async def _failures(stack: Stack, participant_id: str) -> int:
    """The participant's wrong codes counted in the current window."""
    redis = _redis(stack)
    try:
        return await AttemptStore(redis).failures(
            participant_identity(stack.settings.hash_key, participant_id)
        )
    finally:
        await redis.aclose()


async def _staff_unlock(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], participant_id: str
) -> None:
    redis = _redis(stack)
    try:
        staff = LoginService(stack.settings, sessions, redis, SystemClock())
        await staff.unlock(uuid.UUID(participant_id))
    finally:
        await redis.aclose()


async def _codes_queued(sessions: async_sessionmaker[AsyncSession], participant_id: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(SmsMessage)
            .where(
                SmsMessage.participant_id == uuid.UUID(participant_id),
                SmsMessage.purpose == c.SMS_LOGIN_CODE,
            )
        )
    return int(count or 0)


async def test_login_gives_a_new_session_id_and_the_old_one_is_dead(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    await invited(stack, people[0])
    async with clients() as client:
        code = await login_code(stack, client, case, people[0])
        before = client.cookies.get("panel-session")
        assert before
        # Between the steps the session grants nothing.
        assert (await client.get("/api/participant/tasks")).status_code == 401
        assert signed_in(await step_two(client, code))
        after = client.cookies.get("panel-session")
        assert after and after != before and len(after) >= 32
        assert (await client.get("/api/participant/tasks")).status_code == 200
    async with clients() as stale:
        stale.cookies.set("panel-session", before)
        assert (await stale.get("/api/participant/tasks")).status_code == 401


async def test_twenty_parallel_submissions_of_the_right_code_make_one_session(
    stack: Stack, clients: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    await invited(stack, people[0])
    submissions = 20
    # The async test client serves one request at a time, so each submission gets a thread
    # and an app of its own; and none is checked before all have read the pending login: the
    # race at its tightest, on every run.
    gate, passed = threading.Barrier(submissions), threading.Event()
    load = AttemptStore.load

    async def load_together(store: AttemptStore, attempt_id: str) -> Attempt | None:
        found = await load(store, attempt_id)
        if not passed.is_set():
            await asyncio.to_thread(gate.wait, 30)
            passed.set()
        return found

    async with clients() as client:
        code = await login_code(stack, client, case, people[0])
        token, cookie = csrf_token(client), client.cookies.get("panel-session")

    # Built here: building Litestar apps in several threads at once races on its imports.
    apps = [create_app(stack.settings) for _ in range(submissions)]

    def submit(app: Litestar) -> httpx.Response:
        with TestClient(app, base_url="http://testserver.local") as other:
            other.cookies.set(LANGUAGE_COOKIE, "en")
            other.cookies.set("panel-session", cookie or "")
            other.cookies.set("csrftoken", token)
            return other.post(
                "/login/code", data={"code": code, "_csrf_token": token}, follow_redirects=False
            )

    monkeypatch.setattr(AttemptStore, "load", load_together)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=submissions) as threads:
        results = await asyncio.gather(
            *(loop.run_in_executor(threads, submit, app) for app in apps)
        )
    assert sum(signed_in(r) for r in results) == 1
    # The others are told the code is used: none is a wrong guess, so the owner is not locked
    # out by their own double click.
    assert sorted(r.status_code for r in results) == [303] + [409] * (submissions - 1)
    assert all("This code has already been used." in r.text for r in results if not signed_in(r))
    assert await _failures(stack, case["participants"][0]["participantId"]) == 0
    async with clients() as client:
        assert signed_in(await step_two(client, await login_code(stack, client, case, people[0])))


async def test_a_code_already_used_is_not_a_wrong_guess(
    stack: Stack, clients: Factory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    participant_id = case["participants"][0]["participantId"]
    await invited(stack, who)
    redis = _redis(stack)
    try:
        service = LoginService(stack.settings, sessions, redis, SystemClock())
        client = Client(ip="192.0.2.10", user_agent="used-code-test")
        seen = len(await messages_to(stack.settings.redis_url, who["phone"]))
        started = await service.start(case["caseNumber"], who["pesel"][-4:], client)
        code = code_in(await next_message(stack.settings.redis_url, who["phone"], seen))
        won = await service.verify_code(started.attempt_id, started.identity, code, client)
        assert won.outcome is Outcome.SIGNED_IN
        # More repeats than the lock needs: each is "used", none a failure, none a session.
        for _ in range(stack.settings.login_max_failures + 1):
            again = await service.verify_code(started.attempt_id, started.identity, code, client)
            assert again.outcome is Outcome.ALREADY_USED
            assert again.participant_id is None
        assert await service.store.failures(started.identity) == 0
        # A used attempt cannot be given a new code either.
        queued = await _codes_queued(sessions, participant_id)
        resent = await service.resend(started.attempt_id, started.identity, client)
        assert resent.outcome is Outcome.WRONG
        assert await _codes_queued(sessions, participant_id) == queued
        # Any other code on the used attempt is still a wrong guess.
        wrong = await service.verify_code(
            started.attempt_id, started.identity, wrong_code(code), client
        )
        assert wrong.outcome is Outcome.WRONG
        assert await service.store.failures(started.identity) == 1
    finally:
        await redis.aclose()


class _DiesBeforeExpire(Redis):
    """A client whose process dies after its first command of a two-command write."""

    async def expire(self, *args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("the process died here")


async def test_a_stored_code_never_lives_without_its_expiry(stack: Stack) -> None:
    dying = _DiesBeforeExpire.from_url(stack.settings.redis_url)
    redis = _redis(stack)
    try:
        store = AttemptStore(dying)
        attempt_id = uuid.uuid4().hex
        bound = f"panel:test:bound:{uuid.uuid4().hex}"
        expires_at = time.time() + 60
        with suppress(RedisConnectionError):
            await store.create(
                Attempt(attempt_id, "identity", "", ""),
                mac="mac",
                expires_at=expires_at,
                ttl_seconds=60,
            )
        with suppress(RedisConnectionError):
            await store.store_bound_code(
                bound, "identity", "", mac="mac", expires_at=expires_at, ttl_seconds=60
            )
        for key in (AttemptStore.attempt_key(attempt_id), bound):
            # -1 would be a code that never expires; -2 (nothing stored) would be safe too.
            assert 0 < await redis.ttl(key) <= 60, key
    finally:
        await dying.aclose()
        await redis.aclose()


async def test_a_code_is_void_after_five_wrong_tries_even_across_a_resend(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    async with clients() as client:
        code = await login_code(stack, client, case, who)
        for _ in range(4):
            assert (await step_two(client, wrong_code(code))).status_code == 400
        seen = len(await messages_to(stack.settings.redis_url, who["phone"]))
        assert (await resend(client)).status_code == 200
        new_code = code_in(await next_message(stack.settings.redis_url, who["phone"], seen))
        # The fifth wrong code in the same attempt voids it, new code or not.
        assert (await step_two(client, wrong_code(new_code))).status_code == 400
        assert (await step_two(client, new_code)).status_code == 400


async def test_repeated_failures_lock_the_access_with_a_warning_first(
    stack: Stack, clients: Factory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    warnings = []
    async with clients() as client:
        failures = 0
        while failures < 9:
            code = await login_code(stack, client, case, who)
            for _ in range(min(4, 9 - failures)):
                response = await step_two(client, wrong_code(code))
                failures += 1
                assert response.status_code == 400
                warnings.append("will be locked" in response.text)
        assert warnings == [False] * 6 + [True] * 3
        # The tenth failure locks; from then on even the right code does not open the case.
        code = await login_code(stack, client, case, who)
        locked = await step_two(client, wrong_code(code))
        assert locked.status_code == 423
        assert "locked for 30 more minutes" in locked.text
        again = await step_one(client, case["caseNumber"], who["pesel"][-4:])
        assert again.status_code == 423
    async with sessions() as session:
        events = (
            await session.scalars(
                select(AuditEvent.event).where(
                    AuditEvent.participant_id == uuid.UUID(case["participants"][0]["participantId"])
                )
            )
        ).all()
    assert events.count(audit.LOGIN_FAILED) == 9
    assert audit.LOGIN_LOCKED in events

    # Staff unlock lifts it at once.
    redis = _redis(stack)
    try:
        staff = LoginService(stack.settings, sessions, redis, SystemClock())
        await staff.unlock(uuid.UUID(case["participants"][0]["participantId"]))
    finally:
        await redis.aclose()
    async with clients() as client:
        code = await login_code(stack, client, case, who)
        assert signed_in(await step_two(client, code))


async def test_the_days_failures_count_across_locks_and_each_further_wrong_code_locks_again(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    clock = FakeClock()
    limits: dict[str, Any] = {
        "login_max_failures": 3,
        "login_lock_seconds": 600,
        "otp_resend_limit": 20,
    }
    async with clients(clock=clock, **limits) as client:
        code = await login_code(stack, client, case, who)
        for _ in range(2):
            assert (await step_two(client, wrong_code(code))).status_code == 400
        locked = await step_two(client, wrong_code(code))
        assert locked.status_code == 423 and "locked for 10 more minutes" in locked.text
        clock.advance(601)
        # The lock is over, but the window's count is not: the next wrong code locks at once.
        code = await login_code(stack, client, case, who)
        again = await step_two(client, wrong_code(code))
        assert again.status_code == 423 and "locked for 10 more minutes" in again.text
        clock.advance(601)
        code = await login_code(stack, client, case, who)
        assert signed_in(await step_two(client, code))
    # Once the window has passed, counting starts over.
    clock.advance(stack.settings.login_failure_window_seconds)
    async with clients(clock=clock, **limits) as client:
        code = await login_code(stack, client, case, who)
        assert (await step_two(client, wrong_code(code))).status_code == 400


async def test_the_hard_cap_of_consecutive_failures_locks_until_staff_unlock(
    stack: Stack, clients: Factory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    participant_id = case["participants"][0]["participantId"]
    await invited(stack, who)
    clock = FakeClock()
    limits: dict[str, Any] = {
        "login_max_failures": 2,
        "login_lock_seconds": 60,
        "login_max_consecutive_failures": 4,
        "otp_resend_limit": 20,
    }
    async with clients(clock=clock, **limits) as client:
        code = await login_code(stack, client, case, who)
        assert (await step_two(client, wrong_code(code))).status_code == 400
        assert (await step_two(client, wrong_code(code))).status_code == 423
        clock.advance(61)
        code = await login_code(stack, client, case, who)
        assert (await step_two(client, wrong_code(code))).status_code == 423
        clock.advance(61)
        code = await login_code(stack, client, case, who)
        blocked = await step_two(client, wrong_code(code))
        assert blocked.status_code == 423
        assert "Call the bank to have it unlocked." in blocked.text
        assert "more minute" not in blocked.text
        # Neither the lock time nor the end of the window lifts it, and no code is sent.
        clock.advance(stack.settings.login_failure_window_seconds * 30)
        queued = await _codes_queued(sessions, participant_id)
        again = await step_one(client, case["caseNumber"], who["pesel"][-4:])
        assert again.status_code == 423 and "Call the bank to have it unlocked." in again.text
        assert await _codes_queued(sessions, participant_id) == queued

    await _staff_unlock(stack, sessions, participant_id)
    async with clients(clock=clock, **limits) as client:
        code = await login_code(stack, client, case, who)
        assert signed_in(await step_two(client, code))


async def test_a_success_ends_the_run_of_consecutive_failures(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    limits: dict[str, Any] = {"login_max_consecutive_failures": 3}
    async with clients(**limits) as client:
        code = await login_code(stack, client, case, who)
        for _ in range(2):
            assert (await step_two(client, wrong_code(code))).status_code == 400
        assert signed_in(await step_two(client, code))
    async with clients(**limits) as client:
        code = await login_code(stack, client, case, who)
        for _ in range(2):
            assert (await step_two(client, wrong_code(code))).status_code == 400
        blocked = await step_two(client, wrong_code(code))
        assert blocked.status_code == 423 and "Call the bank to have it unlocked." in blocked.text


async def test_codes_can_be_requested_four_times_per_window(stack: Stack, clients: Factory) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    async with clients() as client:
        await login_code(stack, client, case, who)
        for _ in range(3):
            assert (await resend(client)).status_code == 200
        refused = await resend(client)
        assert refused.status_code == 429
        assert "too many codes" in refused.text
        assert (await step_one(client, case["caseNumber"], who["pesel"][-4:])).status_code == 429


def _normalise(body: str) -> str:
    # The CSRF token is random per browser; everything else must match to the byte.
    return re.sub(r'name="_csrf_token" value="[^"]*"', 'name="_csrf_token" value=""', body)


async def test_unknown_case_wrong_fragment_and_bad_checksum_answer_like_a_real_login(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    number, fragment = case["caseNumber"], who["pesel"][-4:]
    bad_checksum = number[:-1] + str((int(number[-1]) + 1) % 10)
    other_fragment = f"{(int(fragment) + 1) % 10000:04d}"
    floor = 0.3
    scenarios = {
        "real": (number, fragment),
        "unknown case": ("KR-2026-00000000", fragment),
        "wrong fragment": (number, other_fragment),
        "checksum-invalid": (bad_checksum, fragment),
    }
    seen: dict[str, tuple[int, str, str, int, str]] = {}
    for name, (case_number, frag) in scenarios.items():
        async with clients(login_min_response_seconds=floor) as client:
            started = time.monotonic()
            first = await step_one(client, case_number, frag)
            elapsed_first = time.monotonic() - started
            page = await client.get("/login/code")
            started = time.monotonic()
            wrong = await step_two(client, "000000")
            elapsed_wrong = time.monotonic() - started
            assert elapsed_first >= floor and elapsed_wrong >= floor, name
            seen[name] = (
                first.status_code,
                first.headers.get("location", ""),
                _normalise(page.text),
                wrong.status_code,
                _normalise(wrong.text),
            )
    reference = seen["real"]
    assert reference[0] == 303 and reference[3] == 400
    for name, answer in seen.items():
        assert answer == reference, name


async def test_a_code_expires_exactly_when_its_lifetime_ends(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    ttl = stack.settings.otp_ttl_seconds
    clock = FakeClock()
    async with clients(clock=clock) as client:
        code = await login_code(stack, client, case, who)
        clock.advance(ttl - 1)
        assert signed_in(await step_two(client, code))
    clock = FakeClock()
    async with clients(clock=clock) as client:
        code = await login_code(stack, client, case, who)
        clock.advance(ttl + 1)
        assert (await step_two(client, code)).status_code == 400


async def signed_in_client(
    stack: Stack, client: AsyncTestClient[Any], case: dict[str, Any], who: dict[str, str]
) -> None:
    code = await login_code(stack, client, case, who)
    assert signed_in(await step_two(client, code))


async def test_sessions_end_after_idle_time_and_at_the_absolute_limit(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    idle = stack.settings.session_idle_timeout_seconds
    clock = FakeClock()
    async with clients(clock=clock) as client:
        await signed_in_client(stack, client, case, who)
        clock.advance(idle - 1)
        assert (await client.get("/api/participant/tasks")).status_code == 200
        clock.advance(idle - 1)
        assert (await client.get("/api/participant/tasks")).status_code == 200
        clock.advance(idle + 1)
        assert (await client.get("/api/participant/tasks")).status_code == 401
        clock.advance(-idle * 3)
        assert (await client.get("/api/participant/tasks")).status_code == 401

    clock = FakeClock()
    absolute = stack.settings.session_absolute_timeout_seconds
    async with clients(clock=clock) as client:
        await signed_in_client(stack, client, case, who)
        elapsed = 0
        while elapsed + idle // 2 < absolute:
            clock.advance(idle // 2)
            elapsed += idle // 2
            assert (await client.get("/api/participant/tasks")).status_code == 200, elapsed
        clock.advance(absolute - elapsed)
        assert (await client.get("/api/participant/tasks")).status_code == 401


async def test_the_task_page_warns_when_the_session_will_end(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    await invited(stack, people[0])
    async with clients() as client:
        await signed_in_client(stack, client, case, people[0])
        page = await client.get("/tasks/")
        assert "signed out after 5 minutes without activity" in page.text


async def test_logout_ends_the_session_for_good(stack: Stack, clients: Factory) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    await invited(stack, people[0])
    async with clients() as client:
        await signed_in_client(stack, client, case, people[0])
        cookie = client.cookies.get("panel-session")
        out = await client.post("/logout", data={"_csrf_token": csrf_token(client)})
        assert out.status_code == 201 or out.status_code == 200
        assert "signed out" in out.text
        assert (await client.get("/api/participant/tasks")).status_code == 401
    async with clients() as replay:
        replay.cookies.set("panel-session", cookie or "")
        assert (await replay.get("/api/participant/tasks")).status_code == 401


async def test_a_used_code_and_another_participants_code_are_refused(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients, co_borrowers=1)
    primary, co = people
    await invited(stack, primary)
    await invited(stack, co)
    async with clients() as client:
        used = await login_code(stack, client, case, primary)
        assert signed_in(await step_two(client, used))
    async with clients() as client:
        await login_code(stack, client, case, primary)
        assert (await step_two(client, used)).status_code == 400
    async with clients() as primary_client, clients() as co_client:
        primary_code = await login_code(stack, primary_client, case, primary)
        co_code = await login_code(stack, co_client, case, co)
        assert (await step_two(co_client, primary_code)).status_code == 400
        assert signed_in(await step_two(co_client, co_code))


async def test_login_fails_closed_when_redis_is_unavailable(stack: Stack) -> None:
    broken = msgspec.structs.replace(stack.settings, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(create_app(broken)) as client:
        client.cookies.set(LANGUAGE_COOKIE, "en")
        await client.get("/login")
        response = await client.post(
            "/login",
            data={
                "case": "KR-2026-00000000",
                "fragment": "1234",
                "_csrf_token": csrf_token(client),
            },
            follow_redirects=False,
        )
        assert response.status_code == 503
        assert "temporarily unavailable" in response.text
        client.cookies.set("panel-session", "a" * 64)
        guarded = await client.get("/api/participant/tasks")
        assert guarded.status_code == 503


async def test_successful_and_failed_logins_are_audited_with_ip_and_user_agent(
    stack: Stack, clients: Factory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case, people = await open_case(clients, co_borrowers=0)
    who = people[0]
    await invited(stack, who)
    async with clients() as client:
        client.headers["user-agent"] = "audit-test/1.0"
        code = await login_code(stack, client, case, who)
        await step_two(client, wrong_code(code))
        assert signed_in(await step_two(client, code))
    participant_id = uuid.UUID(case["participants"][0]["participantId"])
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.participant_id == participant_id)
                .order_by(AuditEvent.id)
            )
        ).all()
    events = [r.event for r in rows]
    assert events == [
        audit.INVITATION_SENT,
        audit.LOGIN_CODE_SENT,
        audit.LOGIN_FAILED,
        audit.LOGIN_SUCCEEDED,
    ]
    for row in rows[1:]:
        assert row.ip == "testclient"
        assert row.user_agent == "audit-test/1.0"
        assert row.case_id == uuid.UUID(case["caseId"])


async def test_security_headers_on_every_response(clients: Factory) -> None:
    async with clients() as client:
        for path in ("/login", "/health", "/api/participant/tasks"):
            headers = (await client.get(path)).headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert "script-src 'self'" in csp
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in headers
    async with clients(base_url="https://testserver.local", secure_cookies=True) as client:
        assert "max-age=" in (await client.get("/login")).headers["strict-transport-security"]


async def test_pages_speak_the_language_the_bank_registered_once_signed_in(
    stack: Stack, clients: Factory
) -> None:
    case, people = await open_case(clients)
    co = people[1]
    assert co["locale"] == "en"
    # The invitation first, so its code is not taken for the sign-in code.
    await invited(stack, co)
    async with clients() as client:
        # A visitor's browser that speaks Polish (the default) until the person is known.
        client.cookies.delete(LANGUAGE_COOKIE)
        assert "Zaloguj" in (await client.get("/login")).text
        code = await login_code(stack, client, case, co)
        response = await step_two(client, code)
        assert signed_in(response)
        assert client.cookies.get(LANGUAGE_COOKIE) == "en"
        overview = await client.get("/case/")
        assert overview.status_code == 200
        assert '<html lang="en">' in overview.text and "Sign out" in overview.text
