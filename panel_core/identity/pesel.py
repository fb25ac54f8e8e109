"""PESEL validation and the keyed hash of the fragment that login asks for.

The panel keeps no PESEL: a full number given when a case is registered is validated, the
configured fragment (the last digits) is hashed with a server key bound to the case, a keyed
blind index of the whole number is kept for staff to search by, and the number is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import date

_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
# Month offsets encode the century: 80 → 1800s, 0 → 1900s, 20 → 2000s, 40 → 2100s, 60 → 2200s.
_CENTURY_BY_OFFSET = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}


class PeselError(ValueError):
    """The value is not a valid PESEL; the message says why, safe to show to bank staff."""


def birth_date(pesel: str) -> date:
    year, month, day = int(pesel[0:2]), int(pesel[2:4]), int(pesel[4:6])
    offset = (month - 1) // 20 * 20
    century = _CENTURY_BY_OFFSET.get(offset)
    if century is None:
        raise PeselError("The month digits of the PESEL encode no valid month.")
    try:
        return date(century + year, month - offset, day)
    except ValueError as exc:
        raise PeselError("The PESEL encodes a date that does not exist.") from exc


def check_digit(first_ten: str) -> int:
    return (10 - sum(int(d) * w for d, w in zip(first_ten, _WEIGHTS, strict=True)) % 10) % 10


def validate_pesel(value: str) -> str:
    """Return the PESEL as 11 digits, or raise PeselError with the reason."""
    pesel = re.sub(r"\s", "", value)
    if not re.fullmatch(r"\d{11}", pesel):
        raise PeselError("A PESEL has exactly 11 digits.")
    birth_date(pesel)
    if check_digit(pesel[:10]) != int(pesel[10]):
        raise PeselError("The PESEL's check digit does not match; check for a typing error.")
    return pesel


def fragment_of(pesel: str, length: int) -> str:
    """The part of the PESEL a participant types at login: its last ``length`` digits."""
    return pesel[-length:]


def is_fragment_shape(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def fragment_hash(key: str, case_id: uuid.UUID, fragment: str) -> str:
    """Keyed hash of a fragment, bound to one case so equal fragments differ across cases."""
    message = f"pesel-fragment|{case_id}|{fragment}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def pesel_index(key: str, pesel: str) -> str:
    """Blind index of a validated PESEL: how staff find a person's cases without the panel
    keeping the number.

    Unlike :func:`fragment_hash` it is bound to no case, so one person's cases share it. It
    must be keyed: the domain is small (≈10^11 strings of 11 digits, and about 5·10^8 valid
    numbers for people born since 1900, as six digits are a birth date and one a check
    digit), so one GPU hashes every candidate with plain SHA-256 in seconds: a plain hash
    would be as good as the number itself.
    An HMAC under the secret ``hash_key`` cannot be computed for a guess without that key, so
    the database alone gives nothing to test guesses against. The ``pesel-index|`` prefix
    keeps it apart from every other HMAC made with the same key.

    Rotating ``hash_key`` leaves every stored index unmatchable, so it needs a re-index, and
    for the PESEL that needs the numbers again from the bank's systems (the panel has none).
    No re-index is built.
    """
    return hmac.new(key.encode(), f"pesel-index|{pesel}".encode(), hashlib.sha256).hexdigest()


def make_pesel(born: date, serial: int) -> str:
    """A valid PESEL for a birth date and a 4-digit serial (for demos and tests)."""
    offset = {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[born.year // 100 * 100]
    first_ten = f"{born.year % 100:02d}{born.month + offset:02d}{born.day:02d}{serial % 10000:04d}"
    return first_ten + str(check_digit(first_ten))
