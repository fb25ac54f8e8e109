"""The bank's own look: its name, helpline, logo, favicon and theme, from a file of its own.

A bank applies its design system without editing templates: ``PANEL_BRANDING_FILE`` names a
JSON file, and the files it names (relative to it) are served under ``/branding/``. The theme
is a stylesheet loaded after the panel's own, so it overrides the design tokens of
``static/css/tokens.css`` (colours, fonts, spacing) and nothing else needs to change.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec

from panel_core.i18n import LOCALES
from panel_core.notifications.sms_templates import PANEL_TEXTS, text_problems
from panel_core.settings import SettingsError

# A text in every panel language: {"pl": "...", "en": "..."}.
Texts = dict[str, str]

ASSET_SUFFIXES = {
    "logo": {".svg", ".png"},
    "favicon": {".svg", ".png", ".ico"},
    "theme": {".css"},
}


class Branding(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    # The bank's name as its customers know it; the header and the logo's text alternative.
    name: Texts = msgspec.field(default_factory=dict)
    # The helpline participants are sent to, as it is dialled (e.g. "+48 800 100 200").
    helpline: str = ""
    # Files next to the branding file, served under /branding/.
    logo: str = ""
    favicon: str = ""
    theme: str = ""
    # The bank's own wording of the panel's SMS texts, by purpose ("invitation",
    # "login-code", "signing", "decision"), each in every panel language with
    # {placeholders}; a case type's own text (its descriptor's "messages") still wins.
    sms: dict[str, Texts] = msgspec.field(default_factory=dict)
    # The folder those files are in; set when the file is read.
    folder: str = ""

    def asset(self, name: str) -> str:
        """The address of one of the bank's files (``logo``, ``favicon``, ``theme``), or ''."""
        file = getattr(self, name)
        return f"/branding/{file}" if file else ""

    @property
    def helpline_link(self) -> str:
        return "tel:" + "".join(ch for ch in self.helpline if ch.isdigit() or ch == "+")


class BrandingError(SettingsError):
    """The branding file cannot be used; the message says which part and why."""


def _sms_problems(sms: dict[str, Texts]) -> list[str]:
    problems = []
    for purpose, texts in sorted(sms.items()):
        if purpose not in PANEL_TEXTS:
            problems.append(f"sms.{purpose}: not one of {', '.join(sorted(PANEL_TEXTS))}")
            continue
        missing = [locale for locale in LOCALES if not texts.get(locale, "").strip()]
        if missing:
            problems.append(f"sms.{purpose} has no text in {', '.join(missing)}")
        problems.extend(text_problems(f"sms.{purpose}", purpose, texts))
    return problems


@functools.lru_cache(maxsize=8)
def bank_sms(path: str) -> dict[str, Texts]:
    """The bank's SMS wording from its branding file (read once per process)."""
    return load_branding(path).sms


def load_branding(path: str) -> Branding:
    """The bank's branding from its file, every named file checked; none when ``path`` is ''."""
    if not path:
        return Branding()
    file = Path(path)
    try:
        branding = msgspec.json.decode(file.read_bytes(), type=Branding)
    except OSError as exc:
        raise BrandingError(f"PANEL_BRANDING_FILE {path!r} cannot be read: {exc}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BrandingError(f"PANEL_BRANDING_FILE {path!r}: {exc}") from exc
    folder = file.resolve().parent
    for field, suffixes in ASSET_SUFFIXES.items():
        name = getattr(branding, field)
        if not name:
            continue
        asset = (folder / name).resolve()
        if asset.parent != folder or asset.suffix.lower() not in suffixes or not asset.is_file():
            raise BrandingError(
                f"PANEL_BRANDING_FILE {path!r}: {field} {name!r} must be a file next to it, "
                f"ending in {', '.join(sorted(suffixes))}"
            )
    if branding.helpline and not any(ch.isdigit() for ch in branding.helpline):
        raise BrandingError(f"PANEL_BRANDING_FILE {path!r}: helpline {branding.helpline!r}")
    problems = _sms_problems(branding.sms)
    if problems:
        raise BrandingError(f"PANEL_BRANDING_FILE {path!r}: " + "; ".join(problems))
    return msgspec.structs.replace(branding, folder=str(folder))
