"""Phone numbers for SMS, normalised to E.164."""

from __future__ import annotations

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
