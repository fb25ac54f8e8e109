"""Phone numbers for SMS, normalised to E.164."""

from __future__ import annotations

import hashlib
import hmac
import re


class PhoneError(ValueError):
    pass


def normalize_phone(value: str, default_country_code: str = "48") -> str:
    """``+48 600 700 800``, ``600-700-800`` and ``0048600700800`` all become ``+48600700800``."""
    digits = re.sub(r"[\s\-().]", "", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        if len(digits) == 9 and digits.isdigit():
            digits = f"+{default_country_code}{digits}"
        else:
            raise PhoneError("Give the phone number with its country code, e.g. +48 600 700 800.")
    if not re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        raise PhoneError("This is not a valid phone number.")
    return digits


def phone_index(key: str, phone_e164: str) -> str:
    """Blind index of a normalised phone number, which staff search by.

    Keyed for the same reason as the PESEL's (panel_core/identity/pesel.py, ``pesel_index``): the
    numbers of one country are few enough to hash them all. The search never compares plain
    numbers, so it keeps working if the stored ``phone_e164`` is ever encrypted or cleared.
    A new ``hash_key`` needs a re-index, which the stored numbers allow; none is built.
    """
    message = f"phone-index|{phone_e164}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
