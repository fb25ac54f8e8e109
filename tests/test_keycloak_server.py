"""The real Keycloak with the staff realm: discovery, keys, the authorization-code flow with
PKCE through Keycloak's own login form, the claims the dashboard relies on, and logout."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools._process import http_get
from devtools.keycloak import KeycloakServer
from devtools.ports import free_port
from tests.keycloak_login import (
    STAFF_CLIENT_ID,
    authorization_code,
    browser,
    exchange_code,
    follow_to_redirect_uri,
    jwt_claims,
    log_in,
    login_form_action,
    start_authorization,
    submit_login,
)

pytestmark = pytest.mark.engine

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def discovery(keycloak: KeycloakServer) -> dict[str, Any]:
    return keycloak.discovery()


@pytest.fixture
def redirect_uri() -> str:
    # The dashboard runs on a free port in the tests and the demo: any loopback port must do.
    return f"http://127.0.0.1:{free_port()}/auth/callback"


def _roles(claims: dict[str, Any]) -> set[str]:
    return set(claims.get("realm_access", {}).get("roles", []))


def _audience(claims: dict[str, Any]) -> list[str]:
    aud = claims["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


def test_discovery_names_the_realm_and_an_rs256_signing_key(
    keycloak: KeycloakServer, discovery: dict[str, Any]
) -> None:
    assert discovery["issuer"] == keycloak.issuer
    assert discovery["issuer"].endswith("/realms/customer-panel")
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert discovery["end_session_endpoint"].startswith(keycloak.issuer)

    with httpx.Client(trust_env=False, timeout=10) as client:
        jwks = client.get(discovery["jwks_uri"]).json()
    signing = [k for k in jwks["keys"] if k.get("use") == "sig" and k.get("alg") == "RS256"]
    assert signing, jwks
    assert all(k["kty"] == "RSA" and k["kid"] and k["n"] and k["e"] for k in signing)

    # Health is on the management port, not on the public one.
    status, body = http_get(f"{keycloak.management_url}/health/ready", timeout=5)
    assert status == 200 and json.loads(body)["status"] == "UP"
    assert http_get(f"{keycloak.base_url}/health/ready", timeout=5)[0] == 404


def test_an_analyst_signs_in_through_the_login_form_with_pkce(
    keycloak: KeycloakServer, discovery: dict[str, Any], redirect_uri: str
) -> None:
    with browser() as client:
        request, page = start_authorization(client, discovery, redirect_uri)
        assert page.status_code == 200
        action = login_form_action(page.text)
        assert action is not None and action.startswith(f"{keycloak.issuer}/login-actions/")
        assert 'lang="pl"' in page.text

        answer = follow_to_redirect_uri(
            client, submit_login(client, page, "anna.analityk", "demo-password"), redirect_uri
        )
        code = authorization_code(answer, request)
        response = exchange_code(discovery, code, request)

    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = jwt_claims(tokens["id_token"])
    print("\nID token of anna.analityk:\n" + json.dumps(claims, indent=2, ensure_ascii=False))
    assert claims["iss"] == keycloak.issuer
    assert claims["typ"] == "ID"
    assert claims["nonce"] == request.nonce
    assert STAFF_CLIENT_ID in _audience(claims)
    assert claims["azp"] == STAFF_CLIENT_ID
    assert claims["groups"] == ["credit-analysts"]
    assert _roles(claims) == {"staff", "credit-analyst"}
    assert claims["preferred_username"] == "anna.analityk"
    assert claims["name"] == "Anna Kowalska"
    assert (claims["given_name"], claims["family_name"]) == ("Anna", "Kowalska")
    assert claims["email"] == "anna.analityk@bank.example"
    assert claims["sub"]

    access = jwt_claims(tokens["access_token"])
    assert STAFF_CLIENT_ID in _audience(access)
    assert access["exp"] - access["iat"] == 300
    assert access["groups"] == ["credit-analysts"]


@pytest.mark.parametrize(
    ("username", "groups", "roles"),
    [
        ("adam.analityk", ["credit-analysts"], {"credit-analyst"}),
        ("celina.konsultant", ["call-centre-agents"], {"call-centre-agent"}),
        ("bartosz.doradca", ["branch-advisers"], {"branch-adviser"}),
        (
            "magda.kierownik",
            ["credit-analysts", "team-managers"],
            {"team-manager", "credit-analyst"},
        ),
        ("olek.operator", ["operators"], {"operator"}),
    ],
)
def test_each_demo_user_carries_their_groups_and_roles(
    discovery: dict[str, Any], redirect_uri: str, username: str, groups: list[str], roles: set[str]
) -> None:
    with browser() as client:
        claims = jwt_claims(log_in(client, discovery, username, redirect_uri)["id_token"])
    assert sorted(claims["groups"]) == groups
    # Only the dashboard's roles: the client's scope leaves Keycloak's default roles out.
    assert _roles(claims) == roles | {"staff"}
    assert claims["preferred_username"] == username


def test_a_wrong_password_is_refused_at_the_form(
    discovery: dict[str, Any], redirect_uri: str
) -> None:
    with browser() as client:
        request, page = start_authorization(client, discovery, redirect_uri)
        refused = submit_login(client, page, "bartosz.doradca", "not-the-password")
        # The form again, with an error, and no way on to the dashboard.
        assert refused.status_code == 200
        assert not refused.is_redirect
        assert login_form_action(refused.text) is not None
        assert 'id="input-error-username"' in refused.text
        # The realm's default locale.
        assert "Nieprawidłowa nazwa użytkownika lub hasło." in refused.text

        # A single mistake does not lock the account: the form right after still works.
        accepted = follow_to_redirect_uri(
            client, submit_login(client, refused, "bartosz.doradca", "demo-password"), redirect_uri
        )
        assert authorization_code(accepted, request)


def test_pkce_is_required(discovery: dict[str, Any], redirect_uri: str) -> None:
    with browser() as client:
        request, refused = start_authorization(client, discovery, redirect_uri, pkce=False)
        location = urllib.parse.urlsplit(refused.headers["location"])
        assert refused.is_redirect and location.path == "/auth/callback"
        error = dict(urllib.parse.parse_qsl(location.query))
        assert error["error"] == "invalid_request"
        assert "code_challenge_method" in error["error_description"]

        request, page = start_authorization(client, discovery, redirect_uri)
        answer = submit_login(client, page, "anna.analityk", "demo-password")
        code = authorization_code(follow_to_redirect_uri(client, answer, redirect_uri), request)
        without = exchange_code(discovery, code, request, send_verifier=False)
        assert without.status_code == 400
        assert without.json()["error"] == "invalid_grant"
        assert "id_token" not in without.json()

        # The SSO session gives a new code at once; a verifier that is not the code's fails too.
        request, answer = start_authorization(client, discovery, redirect_uri)
        code = authorization_code(follow_to_redirect_uri(client, answer, redirect_uri), request)
        wrong = exchange_code(discovery, code, replace(request, code_verifier="x" * 43))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_logout_ends_the_sso_session(discovery: dict[str, Any], redirect_uri: str) -> None:
    with browser() as client:
        tokens = log_in(client, discovery, "adam.analityk", redirect_uri)
        # Signed in: Keycloak answers the next request with a code at once.
        request, again = start_authorization(client, discovery, redirect_uri)
        assert authorization_code(follow_to_redirect_uri(client, again, redirect_uri), request)

        after_logout = f"http://127.0.0.1:{free_port()}/signed-out"
        logout = client.get(
            discovery["end_session_endpoint"],
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": after_logout,
                "state": "bye",
            },
        )
        assert logout.is_redirect, logout.text[:500]
        assert logout.headers["location"] == f"{after_logout}?state=bye"

        request, page = start_authorization(client, discovery, redirect_uri)
        assert page.status_code == 200
        assert login_form_action(page.text) is not None


def test_restart_keeps_the_realm_and_the_addresses(
    keycloak: KeycloakServer, discovery: dict[str, Any], redirect_uri: str
) -> None:
    issuer, pid = keycloak.issuer, keycloak.pid

    keycloak.restart()

    assert keycloak.pid != pid and keycloak.issuer == issuer
    print(f"\nkeycloak restarted in {keycloak.startup_seconds:.1f}s")
    assert keycloak.discovery() == discovery
    with browser() as client:
        claims = jwt_claims(log_in(client, discovery, "olek.operator", redirect_uri)["id_token"])
    assert claims["groups"] == ["operators"]


# -- the owner dies ----------------------------------------------------------------------

_OWNER = """
import json, time
from devtools.keycloak import KeycloakServer
from devtools.reaper import reaper_pid

server = KeycloakServer()
server.start()
started = {"leader": server.pid, "reaper": reaper_pid(), "dir": str(server.state_dir)}
print(json.dumps(started), flush=True)
time.sleep(600)
"""


def _group_members(pgid: int) -> list[int]:
    """Live processes of the group ``pgid``, read from /proc without the code under test."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    # An orphaned zombie has exited; this machine's init reaps them only now and then.
    return raw[raw.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_keycloak_dies_with_an_owner_that_is_killed(tmp_path: Path) -> None:
    with (tmp_path / "owner.log").open("wb") as stderr:
        owner = subprocess.Popen(
            [sys.executable, "-c", _OWNER], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr
        )
    assert owner.stdout is not None
    leader: int | None = None
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 240)
        line = owner.stdout.readline() if ready else b""
        assert line, (tmp_path / "owner.log").read_text()
        started = json.loads(line)
        leader = int(started["leader"])
        assert _group_members(leader)

        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)

        assert _wait_until(lambda: not _group_members(leader), 20), _group_members(leader)
        assert _wait_until(lambda: not Path(started["dir"]).exists(), 10)
        assert _wait_until(lambda: not _alive(started["reaper"]), 10)
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait()
        owner.stdout.close()
        if leader is not None and _group_members(leader):
            os.killpg(leader, signal.SIGKILL)
