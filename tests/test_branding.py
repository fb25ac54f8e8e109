"""A bank's own look from its branding file: name, logo, favicon, helpline and theme, on the
participants' pages and the staff dashboard alike, with no template edited."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from bff.app import create_app
from panel_core.branding import BrandingError, load_branding
from panel_core.settings import Settings
from staff.app import create_app as create_staff_app
from tests.conftest import REPO_ROOT

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
