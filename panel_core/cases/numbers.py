"""Case numbers: what a participant types at login, so digits only and a check digit."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_PATTERN = re.compile(r"^(?P<prefix>[A-Z]{2,6})-(?P<year>\d{4})-(?P<body>\d{7})(?P<check>\d)$")


def _luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def generate_case_number(prefix: str, now: datetime | None = None) -> str:
    """``KR-2026-12345674``: prefix, year, seven random digits and a Luhn check digit."""
    year = (now or datetime.now(UTC)).year
    body = f"{secrets.randbelow(10**7):07d}"
    return f"{prefix}-{year}-{body}{_luhn_check_digit(f'{year}{body}')}"


def is_valid_case_number(value: str) -> bool:
    match = _PATTERN.match(value)
    if match is None:
        return False
    digits = match["year"] + match["body"]
    return _luhn_check_digit(digits) == int(match["check"])


def normalize_case_number(value: str) -> str:
    """What a person types, as stored: no surrounding or inner spaces, upper case."""
    return "".join(value.split()).upper()[:64]
