"""Staff sign-in: OpenID Connect authorization-code flow with PKCE and nonce.

The dashboard never sees a password: the browser goes to the bank's identity provider
(Keycloak), which sends it back with a one-time code. The code is exchanged, server to
server with the client secret and the PKCE verifier, for an ID token, whose signature
(the provider's JWKS), issuer, audience, expiry and nonce are checked before anything in it is
believed. Roles come from ``realm_access``/``resource_access``, groups from ``groups``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from panel_core.clock import Clock, SystemClock
from panel_core.identity.actors import StaffActor

# Clock differences between the provider and the dashboard tolerated in the token's times.
LEEWAY_SECONDS = 60
# How long a fetched discovery document and key set are trusted before being fetched again
# (a key the provider rotated in is fetched at once on first sight of its kid).
METADATA_TTL_SECONDS = 3600


class SignInError(Exception):
    """The sign-in cannot be completed; the message is for the log, never the page."""


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the dashboard remembers between sending the browser away and its return."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str

    def as_dict(self) -> dict[str, str]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "return_to": self.return_to,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PendingSignIn | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["state"]),
                str(data["nonce"]),
                str(data["code_verifier"]),
                str(data["return_to"]),
            )
        except KeyError:
            return None


@dataclass(frozen=True, slots=True)
class SignedIn:
    actor: StaffActor
    id_token: str


class OidcClient:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        staff_role: str,
        manager_role: str,
        clock: Clock | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._staff_role = staff_role
        self._manager_role = manager_role
        self._http = httpx.AsyncClient(timeout=timeout_seconds)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > METADATA_TTL_SECONDS:
                response = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                document: dict[str, Any] = response.json()
                if document.get("issuer") != self.issuer:
                    raise SignInError(
                        f"the provider calls itself {document.get('issuer')!r}, not {self.issuer!r}"
                    )
                self._metadata = document
                self._keys = None
                self._fetched_at = time.monotonic()
            return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._keys is None or refresh:
            response = await self._http.get(metadata["jwks_uri"])
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            redirect_uri=self.redirect_uri,
            scope="openid",
            code_challenge_method="S256",
        )

    async def begin(self, return_to: str) -> tuple[str, PendingSignIn]:
        """Where to send the browser, and what to remember until it comes back."""
        metadata = await self.metadata()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            return_to=return_to,
        )
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        return f"{metadata['authorization_endpoint']}?{urlencode(params)}", pending

    async def complete(self, pending: PendingSignIn, *, state: str, code: str) -> SignedIn:
        """Exchange the code and check the ID token; raises SignInError on anything amiss."""
        if not secrets.compare_digest(state.encode(), pending.state.encode()):
            raise SignInError("the state does not match the sign-in this browser began")
        metadata = await self.metadata()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=pending.code_verifier,
                    grant_type="authorization_code",
                )
            except Exception as exc:
                raise SignInError(f"the provider refused the code: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("the provider sent no ID token")
        claims = await self.verify_id_token(id_token, nonce=pending.nonce)
        return SignedIn(self.actor_from(claims), id_token)

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The token's claims, if its signature, issuer, audience, times and nonce hold."""
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), algorithms=["RS256"])
            except JoseError:
                # A key the provider rotated in since the key set was fetched.
                decoded = jwt.decode(
                    id_token, await self._key_set(refresh=True), algorithms=["RS256"]
                )
            registry = jwt.JWTClaimsRegistry(
                now=lambda: int(self._clock.now()),
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise SignInError(f"the ID token is not valid: {exc}") from exc
        claims = dict(decoded.claims)
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise SignInError("the ID token was issued to another party")
        return claims

    def actor_from(self, claims: dict[str, Any]) -> StaffActor:
        roles = set(_strings(claims.get("realm_access", {}).get("roles")))
        client_access = claims.get("resource_access", {}).get(self.client_id, {})
        roles |= set(_strings(client_access.get("roles")))
        if self._staff_role not in roles:
            raise SignInError(f"the account lacks the {self._staff_role!r} role")
        groups = {group.strip("/").rsplit("/", 1)[-1] for group in _strings(claims.get("groups"))}
        username = str(claims.get("preferred_username") or claims["sub"])
        return StaffActor(
            subject=str(claims["sub"]),
            username=username,
            name=str(claims.get("name") or username),
            groups=frozenset(groups),
            roles=frozenset(roles),
            manager=self._manager_role in roles,
        )

    async def end_session_url(self, id_token: str, return_to: str) -> str | None:
        """RP-initiated logout: the provider ends its own session too."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not endpoint:
            return None
        query = urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": return_to,
                "client_id": self.client_id,
            }
        )
        return f"{endpoint}?{query}"


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
