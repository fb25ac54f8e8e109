"""OpenID Connect against the real Keycloak over httpx, as a browser and the dashboard do it.

The browser half (:func:`browser`, :func:`start_authorization`, :func:`submit_login`) fetches
Keycloak's real login page and posts its real form; the dashboard half
(:func:`exchange_code`) redeems the code at the token endpoint with the client secret and
the PKCE verifier. :func:`jwt_claims` reads a token's payload without checking its
signature: that check is the integrator's, with the realm's JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from devtools.keycloak import DEFAULT_REALM_FILE, DEMO_PASSWORD

__all__ = [
    "DEMO_PASSWORD",
    "STAFF_CLIENT_ID",
    "AuthorizationRequest",
    "LoginError",
    "authorization_code",
    "browser",
    "demo_client_secret",
    "exchange_code",
    "follow_to_redirect_uri",
    "jwt_claims",
    "log_in",
    "login_form_action",
    "start_authorization",
    "submit_login",
]

STAFF_CLIENT_ID = "staff-dashboard"

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class LoginError(AssertionError):
    """Keycloak did not answer the way a successful sign-in does."""


def demo_client_secret(
    client_id: str = STAFF_CLIENT_ID, realm_file: Path = DEFAULT_REALM_FILE
) -> str:
    """The client's secret as the realm file sets it (a demo value, not a secret)."""
    realm: dict[str, Any] = json.loads(realm_file.read_text(encoding="utf-8"))
    for client in realm.get("clients", []):
        if client.get("clientId") == client_id:
            return str(client["secret"])
    raise KeyError(f"{realm_file} has no client {client_id!r}")


# -- the browser ------------------------------------------------------------------


def browser() -> httpx.Client:
    """A client that keeps Keycloak's cookies like a browser and follows no redirect itself.

    The redirect URI has nobody listening behind it, so the caller stops at it
    (:func:`follow_to_redirect_uri`) and reads the code off the address instead.
    """
    client = httpx.Client(follow_redirects=False, trust_env=False, timeout=15.0)

    def send_secure_cookies_to_loopback(response: httpx.Response) -> None:
        # Keycloak marks its cookies Secure even over plain HTTP. Browsers still send them to
        # http://127.0.0.1 and http://localhost (loopback is a "potentially trustworthy"
        # origin); http.cookiejar does not, and every login would start over. httpx copies
        # the jar, policy and all, for each request, so the flag is dropped on the cookies.
        for cookie in client.cookies.jar:
            if cookie.domain in _LOOPBACK_HOSTS:
                cookie.secure = False

    client.event_hooks["response"].append(send_secure_cookies_to_loopback)
    return client


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the dashboard keeps between sending the browser to Keycloak and its return."""

    redirect_uri: str
    state: str
    nonce: str
    code_verifier: str

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @classmethod
    def new(cls, redirect_uri: str) -> AuthorizationRequest:
        return cls(
            redirect_uri=redirect_uri,
            state=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(16),
            # 43-128 characters of the unreserved set (RFC 7636 section 4.1).
            code_verifier=secrets.token_urlsafe(48),
        )

    def url(
        self,
        discovery: dict[str, Any],
        client_id: str = STAFF_CLIENT_ID,
        *,
        pkce: bool = True,
        scope: str = "openid",
    ) -> str:
        params = {
            "client_id": client_id,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
        }
        if pkce:
            params |= {"code_challenge": self.code_challenge, "code_challenge_method": "S256"}
        return f"{discovery['authorization_endpoint']}?{urllib.parse.urlencode(params)}"


def start_authorization(
    client: httpx.Client,
    discovery: dict[str, Any],
    redirect_uri: str,
    client_id: str = STAFF_CLIENT_ID,
    *,
    pkce: bool = True,
) -> tuple[AuthorizationRequest, httpx.Response]:
    """GET the authorization endpoint: the login page, or (with an SSO session) a redirect."""
    request = AuthorizationRequest.new(redirect_uri)
    return request, client.get(request.url(discovery, client_id, pkce=pkce))


class _LoginFormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "kc-form-login":
            # HTMLParser has already turned &amp; back into &.
            self.action = attributes.get("action")


def login_form_action(html: str) -> str | None:
    """The action URL of Keycloak's username/password form, None if the page has none."""
    parser = _LoginFormParser()
    parser.feed(html)
    parser.close()
    return parser.action


def submit_login(
    client: httpx.Client, login_page: httpx.Response, username: str, password: str
) -> httpx.Response:
    """POST the login page's form as a person who typed ``username`` and ``password``."""
    action = login_form_action(login_page.text)
    if action is None:
        raise LoginError(
            f"no login form at {login_page.url} (status {login_page.status_code}): "
            f"{login_page.text[:300]!r}"
        )
    return client.post(
        action, data={"username": username, "password": password, "credentialId": ""}
    )


def follow_to_redirect_uri(
    client: httpx.Client, response: httpx.Response, redirect_uri: str, max_hops: int = 10
) -> httpx.Response:
    """Follow Keycloak's own redirects; stop at the response that sends to ``redirect_uri``."""
    for _ in range(max_hops):
        location = response.headers.get("location")
        if not response.is_redirect or location is None:
            return response
        target = str(response.url.join(location))
        if target.split("?", 1)[0] == redirect_uri.split("?", 1)[0]:
            return response
        response = client.get(target)
    raise LoginError(f"more than {max_hops} redirects from {response.url}")


def authorization_code(response: httpx.Response, request: AuthorizationRequest) -> str:
    """The code of a redirect to ``request.redirect_uri``, its state checked."""
    location = response.headers.get("location")
    if not response.is_redirect or location is None:
        raise LoginError(
            f"expected a redirect to {request.redirect_uri}, got {response.status_code} "
            f"at {response.url}: {response.text[:300]!r}"
        )
    target = urllib.parse.urlsplit(str(response.url.join(location)))
    params = dict(urllib.parse.parse_qsl(target.query))
    if urllib.parse.urlunsplit((*target[:3], "", "")) != request.redirect_uri:
        raise LoginError(f"redirected to {location}, not to {request.redirect_uri}")
    if "error" in params:
        raise LoginError(f"authorization refused: {params}")
    if params.get("state") != request.state:
        raise LoginError(f"state {params.get('state')!r} is not {request.state!r}")
    return params["code"]


# -- the dashboard ----------------------------------------------------------------


def exchange_code(
    discovery: dict[str, Any],
    code: str,
    request: AuthorizationRequest,
    *,
    client_id: str = STAFF_CLIENT_ID,
    client_secret: str | None = None,
    send_verifier: bool = True,
) -> httpx.Response:
    """Redeem ``code`` at the token endpoint, authenticated with the client secret (Basic)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri}
    if send_verifier:
        form["code_verifier"] = request.code_verifier
    secret = client_secret if client_secret is not None else demo_client_secret(client_id)
    with httpx.Client(trust_env=False, timeout=15.0) as client:
        return client.post(
            discovery["token_endpoint"],
            data=form,
            auth=(urllib.parse.quote(client_id, safe=""), urllib.parse.quote(secret, safe="")),
        )


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, decoded without verifying anything."""
    try:
        payload = token.split(".")[1]
    except IndexError:
        raise ValueError("not a compact JWS") from None
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def log_in(
    client: httpx.Client,
    discovery: dict[str, Any],
    username: str,
    redirect_uri: str,
    password: str = DEMO_PASSWORD,
    *,
    client_id: str = STAFF_CLIENT_ID,
    client_secret: str | None = None,
) -> dict[str, Any]:
    """The whole authorization-code flow with PKCE; returns the token endpoint's answer.

    Also works when ``client`` already has an SSO session: Keycloak then redirects with a
    code without showing the form.
    """
    request, page = start_authorization(client, discovery, redirect_uri, client_id)
    if not page.is_redirect:
        page = submit_login(client, page, username, password)
    code = authorization_code(follow_to_redirect_uri(client, page, redirect_uri), request)
    response = exchange_code(
        discovery, code, request, client_id=client_id, client_secret=client_secret
    )
    if response.status_code != 200:
        raise LoginError(f"token endpoint refused the code: {response.status_code} {response.text}")
    tokens: dict[str, Any] = response.json()
    return tokens
