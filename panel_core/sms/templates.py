"""SMS texts from Jinja2 templates, one per purpose and language."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates" / "sms"
DEFAULT_LOCALE = "pl"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Plain text: nothing to escape, and a missing variable must fail loudly rather than
    # send a message with a hole in it.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=(), default=False),
        keep_trailing_newline=False,
    )


def render_sms(purpose: str, locale: str, context: Mapping[str, Any]) -> str:
    environment = _environment()
    try:
        template = environment.get_template(f"{purpose}.{locale}.txt.j2")
    except TemplateNotFound:
        template = environment.get_template(f"{purpose}.{DEFAULT_LOCALE}.txt.j2")
    lines = [line.rstrip() for line in template.render(**context).strip().splitlines()]
    return "\n".join(lines)


# The GSM 03.38 basic character set; any other character makes the message UCS-2.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def segments(text: str) -> int:
    """How many SMS parts a text takes (GSM-7: 160/153 characters, UCS-2: 70/67)."""
    single, multi = (160, 153) if set(text) <= _GSM7 else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)
