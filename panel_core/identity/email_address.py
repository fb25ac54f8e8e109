"""E-mail addresses the bank registers for participants: checked at registration, masked on
the staff's pages."""

from __future__ import annotations

import re

MAX_LENGTH = 254
# RFC 5321's limits and a practical subset of RFC 5322's dot-atom: what a bank's systems
# hold and every relay takes. No quoted local parts, comments or IP literals, and nothing
# that could end a header line.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_LOCAL})@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")


class EmailAddressError(ValueError):
    pass


def normalize_email(value: str) -> str:
    """The address as it is stored: trimmed, its domain in lower case."""
    text = value.strip()
    if len(text) > MAX_LENGTH:
        raise EmailAddressError(f"An e-mail address has at most {MAX_LENGTH} characters.")
    match = _ADDRESS.fullmatch(text)
    if match is None or len(match.group(1)) > 64:
        raise EmailAddressError("This is not a valid e-mail address, e.g. jan.kowalski@example.pl.")
    return f"{match.group(1)}@{match.group(2).lower()}"


def mask_email(address: str | None) -> str:
    """``j•••@example.pl``: staff confirm an address with the customer, they do not read it out."""
    if not address or "@" not in address:
        return ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"
