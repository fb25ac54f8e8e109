"""The panel's languages: Polish (the default) and English, through gettext catalogs.

Source texts are English msgids; ``panel_core/locale/<locale>/LC_MESSAGES/messages.po`` holds
the translations. The catalogs are read straight from the ``.po`` files (through Babel) so a
fresh checkout needs no compile step. The language of the request being served lives in a
context variable, set once per request by the BFF's locale middleware, so code deep in the
domain (form validation messages, for instance) translates without passing it around.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES: tuple[str, ...] = ("pl", "en")
DEFAULT_LOCALE = "pl"
# Each language named in itself, for the language switch.
LANGUAGE_NAMES: Mapping[str, str] = {"pl": "Polski", "en": "English"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

_current: ContextVar[str] = ContextVar("panel_locale", default=DEFAULT_LOCALE)


def supported(locale: str | None) -> str | None:
    """The supported locale this value names, or None."""
    if not locale:
        return None
    short = locale.strip().lower().replace("_", "-").split("-")[0]
    return short if short in LOCALES else None


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = BytesIO()
    # Fuzzy entries are drafts a translator has not confirmed; they fall back to English.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(supported(locale) or DEFAULT_LOCALE)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(supported(locale) or DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str, **params: Any) -> str:
    """The message in the current language; ``%(name)s`` placeholders filled from params."""
    text = translations(_current.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **params}


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where used."""
    return message


def translate(message: str) -> str:
    """Only the translation, placeholders left alone (Jinja's i18n extension fills them)."""
    return translations(_current.get()).gettext(message)


def translate_plural(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def pick(texts: Mapping[str, str] | str | None, locale: str | None = None) -> str:
    """One text of a ``{locale: text}`` mapping from a case-type descriptor or form.

    Falls back to the default language, then to any text there is, so a half-translated
    case type still shows something rather than nothing.
    """
    if texts is None:
        return ""
    if isinstance(texts, str):
        return texts
    locale = locale or _current.get()
    for candidate in (locale, DEFAULT_LOCALE, *texts.keys()):
        text = texts.get(candidate)
        if text:
            return text
    return ""
