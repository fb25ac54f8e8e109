"""SMS texts: one Jinja2 template per purpose, its words translated through the gettext
catalogs like every other text of the panel."""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from panel_core import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates" / "sms"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Plain text: nothing to escape, and a missing variable must fail loudly rather than
    # send a message with a hole in it.
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=(), default=False),
        keep_trailing_newline=False,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.translate, ngettext=i18n.translate_plural, newstyle=True
    )
    return environment


_APPOINTMENT_PLACEHOLDERS = frozenset(
    {"case_number", "when", "kind", "where", "minutes", "subject", "link"}
)
# The placeholders a bank's own text of each purpose may use, and those it must: a text
# without the code or the link would send the person nothing they can use.
PANEL_TEXTS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "invitation": (
        frozenset({"case_number", "link", "code", "valid_days"}),
        frozenset({"link", "code"}),
    ),
    "login-code": (frozenset({"code", "minutes"}), frozenset({"code"})),
    "signing": (
        frozenset({"document", "case_number", "code", "short_hash", "minutes"}),
        frozenset({"code", "short_hash"}),
    ),
    "decision": (frozenset({"case_number", "decision", "link"}), frozenset({"decision"})),
    # Read out to the bank on the phone (assisted mode): {task} is the task's name.
    "assisted-code": (frozenset({"code", "minutes", "case_number", "task"}), frozenset({"code"})),
    # Appointments: {when} is the local date and time, {kind} "a branch visit" or "a phone
    # call", {where} the branch's address or who calls whom, {minutes} the duration.
    "appointment": (_APPOINTMENT_PLACEHOLDERS, frozenset({"when"})),
    "appointment-moved": (_APPOINTMENT_PLACEHOLDERS, frozenset({"when"})),
    "appointment-reminder": (_APPOINTMENT_PLACEHOLDERS, frozenset({"when"})),
    # The chat: an unread answer of the bank; never what it says.
    "message-waiting": (frozenset({"case_number", "link"}), frozenset({"case_number"})),
    "appointment-cancelled": (
        frozenset({"case_number", "when", "kind", "link"}),
        frozenset({"when"}),
    ),
}
# The purposes a case type words itself (the rest are the bank's, or the panel's).
CASE_TYPE_TEXTS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "invitation": PANEL_TEXTS["invitation"],
}


def text_problems(where: str, purpose: str, texts: Mapping[str, str]) -> list[str]:
    """Why a text of ``purpose`` could not be sent, for each language it is given in."""
    allowed, required = PANEL_TEXTS[purpose]
    problems = []
    for locale, text in sorted(texts.items()):
        try:
            names = placeholders(text)
        except ValueError as exc:
            problems.append(f"{where}.{locale}: {exc}")
            continue
        problems.extend(
            f"{where}.{locale}: unknown placeholder {{{name}}}" for name in sorted(names - allowed)
        )
        problems.extend(f"{where}.{locale}: lacks {{{name}}}" for name in sorted(required - names))
    return problems


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of a case type's text; a malformed one raises ValueError."""
    names = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}}} is not a plain placeholder")
        names.add(name)
    return names


def render_sms(
    purpose: str,
    locale: str,
    context: Mapping[str, Any],
    own: Mapping[str, str] | None = None,
    bank: Mapping[str, str] | None = None,
) -> str:
    """The message in the recipient's language (Polish when theirs is not supported).

    ``own`` is the case type's text for the purpose, ``bank`` the bank's (its branding file),
    each {locale: text with ``{placeholders}``}, checked before use; the first of them given
    wins, and without either the panel's own template is sent.
    """
    locale = i18n.supported(locale) or i18n.DEFAULT_LOCALE
    wording = own or bank
    if wording:
        rendered = i18n.pick(wording, locale).format_map(dict(context))
        return "\n".join(line.rstrip() for line in rendered.strip().splitlines())
    template = _environment().get_template(f"{purpose}.txt.j2")
    with i18n.use_locale(locale):
        rendered = template.render(**context)
    lines = [line.rstrip() for line in rendered.strip().splitlines()]
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
