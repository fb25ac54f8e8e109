"""One-time codes: drawn from a CSPRNG, kept only as keyed HMACs."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def generate_code(length: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(length))


def code_mac(key: str, *, purpose: str, binding: str, participant_id: str, code: str) -> str:
    """HMAC binding a code to what it may open: a purpose, an attempt and a participant."""
    message = f"{purpose}|{binding}|{participant_id}|{code}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def identity_key(key: str, material: str) -> str:
    """Stable, keyed name of a login identity (case + fragment), known or not."""
    return hmac.new(key.encode(), f"identity|{material}".encode(), hashlib.sha256).hexdigest()
