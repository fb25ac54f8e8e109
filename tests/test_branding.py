"""A bank's own look from its branding file: name, logo, favicon, helpline and theme, on the
participants' pages and the staff dashboard alike, with no template edited."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from panel_core.branding import BrandingError, load_branding
from panel_core.clock import FakeClock
from panel_core.db.models import SmsMessage
from panel_core.documents.storage import LocalDiskStorage
from panel_core.identity.actors import Client
from panel_core.identity.service import LoginService, Outcome
from panel_core.notifications.sms_templates import render_sms
from panel_core.settings import Settings
from staff.app import create_app as create_staff_app
from tests.conftest import REPO_ROOT, Stack
from tests.test_case_closure import registered_case

EXAMPLE = REPO_ROOT / "branding" / "example" / "branding.json"


def test_the_example_branding_names_only_files_next_to_it() -> None:
    branding = load_branding(str(EXAMPLE))
    assert branding.asset("theme") == "/branding/theme.css"
    assert branding.helpline_link == "tel:+48800100200"
    assert load_branding("").asset("logo") == ""


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"logo": "../secret.svg"}, "logo '../secret.svg' must be a file next to it"),
        ({"theme": "theme.js"}, "theme 'theme.js' must be a file next to it, ending in .css"),
        ({"favicon": "missing.ico"}, "favicon 'missing.ico' must be a file next to it"),
        ({"colour": "red"}, "unknown field `colour`"),
        ({"helpline": "call us"}, "helpline 'call us'"),
    ],
)
def test_a_wrong_branding_file_stops_the_app_saying_why(
    tmp_path: Path, document: dict[str, str], problem: str
) -> None:
    (tmp_path / "theme.js").write_text("")
    path = tmp_path / "branding.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BrandingError) as refused:
        create_app(Settings(demo_mode=True, branding_file=str(path)))
    assert problem in str(refused.value)


@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_both_apps_wear_the_banks_branding(
    settings: Settings, staff_settings: Settings
) -> None:
    branded = msgspec.structs.replace(settings, branding_file=str(EXAMPLE))
    async with AsyncTestClient(create_app(branded)) as client:
        page = (await client.get("/login")).text
        assert '<link rel="stylesheet" href="/branding/theme.css">' in page
        assert '<link rel="icon" href="/branding/favicon.svg">' in page
        assert 'src="/branding/logo.svg" alt="Bank Przykładowy"' in page
        assert '<a href="tel:+48800100200">+48 800 100 200</a>' in page
        theme = await client.get("/branding/theme.css")
        assert theme.status_code == 200 and "--panel-color-brand: #5a1e5c" in theme.text
    async with AsyncTestClient(create_app(settings)) as client:
        plain = (await client.get("/login")).text
        assert (
            "/branding/" not in plain and "Call the bank's helpline" in plain
        ) or "infolinię" in plain
    staff_branded = msgspec.structs.replace(staff_settings, branding_file=str(EXAMPLE))
    async with AsyncTestClient(create_staff_app(staff_branded)) as client:
        page = (await client.get("/signed-out")).text
        assert '<link rel="stylesheet" href="/branding/theme.css">' in page
        assert 'alt="Bank Przykładowy"' in page


@pytest.mark.parametrize(
    ("sms", "problem"),
    [
        (
            {"greeting": {"pl": "a", "en": "b"}},
            "sms.greeting: not one of appointment, appointment-cancelled, appointment-moved, "
            "appointment-reminder, assisted-code, decision, invitation",
        ),
        ({"login-code": {"pl": "Kod {code}"}}, "sms.login-code has no text in en"),
        (
            {"login-code": {"pl": "Kod {code}", "en": "Your code"}},
            "sms.login-code.en: lacks {code}",
        ),
        (
            {"signing": {"pl": "{code} {short_hash} {pesel}", "en": "{code} {short_hash}"}},
            "sms.signing.pl: unknown placeholder {pesel}",
        ),
    ],
)
def test_a_banks_sms_text_that_could_not_be_sent_stops_the_app(
    tmp_path: Path, sms: dict[str, dict[str, str]], problem: str
) -> None:
    path = tmp_path / "branding.json"
    path.write_text(json.dumps({"sms": sms}))
    with pytest.raises(BrandingError) as refused:
        create_app(Settings(demo_mode=True, branding_file=str(path)))
    assert problem in str(refused.value)


def test_the_banks_wording_replaces_the_panels_and_a_case_types_own_still_wins() -> None:
    bank = load_branding(str(EXAMPLE)).sms
    assert set(bank) >= {"login-code", "decision"}
    values = {"code": "123456", "minutes": 5}
    code = render_sms("login-code", "en", values, bank=bank["login-code"])
    assert code == bank["login-code"]["en"].format(**values)
    assert "123456" in code and code != render_sms("login-code", "en", values)
    # Polish is the fallback language, for the bank's text as for the panel's.
    assert render_sms("login-code", "de", {"code": "1", "minutes": 5}, bank=bank["login-code"]) == (
        bank["login-code"]["pl"].format(code="1", minutes=5)
    )
    own = {"pl": "Sprawa {case_number}: {link} {code}", "en": "Case {case_number}: {link} {code}"}
    context = {"case_number": "KD-2026-1", "link": "https://p/l", "code": "1", "valid_days": 7}
    invitation = {"pl": "Bank: {link} {code}", "en": "Bank: {link} {code}"}
    assert render_sms("invitation", "en", context, own, invitation) == (
        "Case KD-2026-1: https://p/l 1"
    )
    assert render_sms("invitation", "en", context, None, invitation) == "Bank: https://p/l 1"


@pytest.mark.engine
@pytest.mark.asyncio(loop_scope="session")
async def test_a_login_code_goes_out_in_the_banks_wording(
    stack: Stack, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = msgspec.structs.replace(stack.settings, branding_file=str(EXAMPLE))
    registered = await registered_case(
        settings, sessions, LocalDiskStorage(settings.document_storage_dir)
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        login = LoginService(settings, sessions, redis, FakeClock())
        fragment = registered.pesel[-settings.pesel_fragment_length :]
        started = await login.start(
            registered.case_number, fragment, Client(ip="10.77.0.1", user_agent="t")
        )
        assert started.outcome is Outcome.CODE_SENT
    finally:
        await redis.aclose()
    async with sessions() as session:
        body = await session.scalar(
            select(SmsMessage.body)
            .where(
                SmsMessage.participant_id == registered.participant_id,
                SmsMessage.purpose == "login-code",
            )
            .order_by(SmsMessage.created_at.desc())
            .limit(1)
        )
    wording = load_branding(str(EXAMPLE)).sms["login-code"]["en"]
    prefix = wording.split("{", 1)[0]
    assert body is not None and prefix and body.startswith(prefix)
