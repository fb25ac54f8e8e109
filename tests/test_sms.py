"""The SMS outbox: nothing lost when the provider fails, nothing sent twice, codes not kept."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec
import pytest
import pytest_asyncio
from jinja2 import UndefinedError
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core import constants as c
from panel_core.cli import migrate
from panel_core.db.models import SmsMessage, SmsState, utcnow
from panel_core.db.session import create_engine, create_session_factory
from panel_core.notifications.sms_dispatcher import SmsOutbox
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.notifications.sms_providers import (
    DEV_OUTBOX_KEY,
    DevOutboxProvider,
    SmsApiProvider,
    SmsConfigurationError,
    build_provider,
)
from panel_core.notifications.sms_templates import render_sms, segments
from panel_core.outbox import Outbox
from panel_core.settings import Settings
from tests.conftest import Stack

TOKEN = "smsapi-test-token"


class SmsApiStub:
    """A local HTTP server speaking SMSAPI's /sms.do as documented, with switchable answers."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                stub.requests.append(
                    {"path": self.path, "auth": self.headers.get("authorization"), "form": form}
                )
                if stub.mode == "timeout":
                    threading.Event().wait(2.0)
                status, body = stub.answer(form)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.mode == "server-error":
            return 500, {"message": "internal"}
        if self.mode == "auth":
            return 401, {"error": 101, "message": "Authorization failed"}
        if self.mode == "invalid-number":
            return 200, {"error": 13, "message": "No correct phone numbers"}
        if self.mode == "idx-used":
            return 200, {"error": 53, "message": "Not unique idx"}
        return 200, {
            "count": 1,
            "list": [
                {
                    "id": f"smsapi-{len(self.requests)}",
                    "points": 0.16,
                    "number": form.get("to"),
                    "status": "QUEUE",
                }
            ],
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[SmsApiStub]:
    server = SmsApiStub()
    yield server
    server.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    # A database of its own: the engine tier's worker process runs a dispatcher too, and
    # must not take these messages.
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sms') / 'outbox.db'}"
    migrate(url)
    return url


@pytest_asyncio.fixture(loop_scope="session")
async def outbox(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await session.execute(SmsMessage.__table__.delete())
        await session.commit()
    yield sessions
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


async def queue(sessions: async_sessionmaker[AsyncSession], key: str = "login-code:1") -> None:
    async with sessions() as session:
        await enqueue_sms(
            session,
            idempotency_key=key,
            purpose=c.SMS_LOGIN_CODE,
            phone_e164="+48600700800",
            locale="pl",
            context={"code": "123456", "minutes": 5},
        )
        await session.commit()


async def only_message(sessions: async_sessionmaker[AsyncSession]) -> SmsMessage:
    async with sessions() as session:
        return (await session.scalars(select(SmsMessage))).one()


async def make_due(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(
            update(SmsMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


def dispatcher(
    sessions: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient, **kw: Any
) -> Outbox[Any, Any]:
    provider = SmsApiProvider(http, base_url=stub.url, token=TOKEN, sender="Bank")
    return Outbox(sessions, SmsOutbox(provider, retry_initial_seconds=30, **kw))


@pytest.mark.asyncio(loop_scope="session")
async def test_queueing_the_same_message_twice_stores_it_once(
    outbox: async_sessionmaker[AsyncSession],
) -> None:
    await queue(outbox, "invitation:p1")
    await queue(outbox, "invitation:p1")
    async with outbox() as session:
        assert await session.scalar(select(func.count()).select_from(SmsMessage)) == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_a_sent_message_records_the_provider_id_and_forgets_the_code(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    assert await dispatcher(outbox, stub, http).drain() == 1
    message = await only_message(outbox)
    assert message.state == SmsState.SENT
    assert message.provider == "smsapi" and message.provider_message_id == "smsapi-1"
    assert message.body is None
    [request] = stub.requests
    assert request["path"] == "/sms.do"
    assert request["auth"] == f"Bearer {TOKEN}"
    assert request["form"]["to"] == "48600700800"
    assert request["form"]["idx"] == str(message.id)
    assert request["form"]["check_idx"] == "1"
    assert request["form"]["from"] == "Bank"
    assert "123456" in request["form"]["message"]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_provider_outage_delays_the_message_and_loses_nothing(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    sender = dispatcher(outbox, stub, http)
    stub.mode = "server-error"
    await sender.drain()
    first = await only_message(outbox)
    assert first.state == SmsState.PENDING and first.attempts == 1
    # SQLite hands datetimes back without their (UTC) zone.
    assert first.next_attempt_at.replace(tzinfo=UTC) > utcnow()
    assert first.body and "123456" in first.body
    # Not due yet: nothing is sent before the backoff has passed.
    assert await sender.drain() == 0
    stub.mode = "timeout"
    await make_due(outbox)
    await sender.drain()
    second = await only_message(outbox)
    assert second.state == SmsState.PENDING and second.attempts == 2
    assert "Timeout" in (second.last_error or "")
    stub.mode = "ok"
    await make_due(outbox)
    await sender.drain()
    delivered = await only_message(outbox)
    assert delivered.state == SmsState.SENT and delivered.attempts == 3
    # Every attempt carried the same idx, so SMSAPI itself refuses a duplicate.
    assert len({r["form"]["idx"] for r in stub.requests}) == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_an_invalid_number_fails_at_once_and_keeps_no_code(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    stub.mode = "invalid-number"
    await dispatcher(outbox, stub, http).drain()
    message = await only_message(outbox)
    assert message.state == SmsState.FAILED and message.attempts == 1
    assert message.body is None
    assert "error 13" in (message.last_error or "")


@pytest.mark.asyncio(loop_scope="session")
async def test_wrong_credentials_are_retried_not_dropped(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    stub.mode = "auth"
    await dispatcher(outbox, stub, http).drain()
    message = await only_message(outbox)
    assert message.state == SmsState.PENDING
    assert "error 101" in (message.last_error or "")


@pytest.mark.asyncio(loop_scope="session")
async def test_an_idx_already_used_means_an_earlier_attempt_got_through(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    stub.mode = "idx-used"
    await dispatcher(outbox, stub, http).drain()
    assert (await only_message(outbox)).state == SmsState.SENT


@pytest.mark.asyncio(loop_scope="session")
async def test_a_message_is_given_up_after_the_last_attempt(
    outbox: async_sessionmaker[AsyncSession], stub: SmsApiStub, http: httpx.AsyncClient
) -> None:
    await queue(outbox)
    stub.mode = "server-error"
    sender = dispatcher(outbox, stub, http, max_attempts=3)
    for _ in range(3):
        await make_due(outbox)
        await sender.drain()
    message = await only_message(outbox)
    assert message.state == SmsState.FAILED and message.attempts == 3
    assert message.body is None


def test_texts_render_in_polish_and_english_with_the_code_and_link() -> None:
    context = {
        "case_number": "KR-2026-12345678",
        "link": "https://panel/login",
        "code": "424242",
        "valid_days": 7,
    }
    polish = render_sms(c.SMS_INVITATION, "pl", context)
    english = render_sms(c.SMS_INVITATION, "en", context)
    for text in (polish, english):
        assert "KR-2026-12345678" in text and "https://panel/login" in text and "424242" in text
        # Polish letters make a message UCS-2 (70 characters a part); keep it to 4 parts.
        assert segments(text) <= 4, (segments(text), text)
    assert "sprawie" in polish and "case" in english
    assert render_sms(c.SMS_INVITATION, "de", context) == polish
    # The words come from the gettext catalogs, plural forms included.
    assert "(ważny 7 dni)" in polish and "(valid 7 days)" in english
    one_day = {**context, "valid_days": 1}
    assert "(ważny 1 dzień)" in render_sms(c.SMS_INVITATION, "pl", one_day)
    assert "(valid 1 day)" in render_sms(c.SMS_INVITATION, "en", one_day)
    code = render_sms(c.SMS_LOGIN_CODE, "en", {"code": "111222", "minutes": 5})
    assert "111222" in code and "5 min" in code
    with pytest.raises(UndefinedError):
        render_sms(c.SMS_LOGIN_CODE, "pl", {"minutes": 5})


def test_segments_follow_the_gsm_and_ucs2_part_sizes() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2
    assert segments("ą" * 70) == 1 and segments("ą" * 71) == 2 and segments("ą" * 135) == 3


def test_the_demo_provider_is_refused_outside_demo_mode() -> None:
    with pytest.raises(SmsConfigurationError, match="demo mode"):
        build_provider(Settings(demo_mode=False, sms_provider="dev"), None, None)  # type: ignore[arg-type]
    with pytest.raises(SmsConfigurationError, match="TOKEN"):
        build_provider(Settings(sms_provider="smsapi"), None, None)  # type: ignore[arg-type]


@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_the_demo_outbox_page_shows_what_the_demo_provider_sent(stack: Stack) -> None:
    redis = Redis.from_url(stack.settings.redis_url)
    reference = str(uuid.uuid4())
    try:
        await DevOutboxProvider(redis).send("+48600111222", f"Demo message {reference}", reference)
        assert await redis.llen(DEV_OUTBOX_KEY) >= 1
    finally:
        await redis.aclose()
    async with AsyncTestClient(create_app(stack.settings)) as client:
        page = await client.get("/dev/outbox")
    assert page.status_code == 200
    assert f"Demo message {reference}" in page.text and "+48600111222" in page.text
    production = msgspec.structs.replace(stack.settings, demo_mode=False)
    async with AsyncTestClient(create_app(production)) as client:
        assert (await client.get("/dev/outbox")).status_code == 404
