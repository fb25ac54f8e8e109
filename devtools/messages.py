"""The gettext catalogs: extract every UI text, then merge it into each language's catalog."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from panel_core.i18n import DOMAIN, LOCALE_DIR, LOCALES

REPO_ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHOD_MAP = [
    ("panel_core/**.py", "python"),
    ("bff/**.py", "python"),
    ("staff/**.py", "python"),
    ("panel_web/**.py", "python"),
    ("templates/**.html.j2", "jinja2"),
    ("templates/sms/**.txt.j2", "jinja2"),
]
OPTIONS = {
    "templates/**.html.j2": {"extensions": "jinja2.ext.i18n"},
    "templates/sms/**.txt.j2": {"extensions": "jinja2.ext.i18n"},
}
SOURCE_LOCALE = "en"


def extract() -> Catalog:
    catalog = Catalog(project="customer-panel", domain=DOMAIN, charset="utf-8")
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(REPO_ROOT), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        # Only our own code: never the virtualenv or node_modules, even if they match.
        if filename.split("/")[0] not in {"panel_core", "panel_web", "bff", "staff", "templates"}:
            continue
        catalog.add(message, locations=[(filename, lineno)])
    return catalog


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def update_catalogs() -> list[Path]:
    """Bring every catalog in line with the sources; translations already made are kept."""
    template = extract()
    written = []
    for locale in LOCALES:
        path = po_path(locale)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale, domain=DOMAIN)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN, charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(
                handle,
                catalog,
                width=100,
                omit_header=False,
                sort_output=True,
                include_previous=False,
                ignore_obsolete=True,
                no_location=True,
            )
        written.append(path)
    return written


def untranslated(locale: str) -> list[str]:
    """Source texts with no confirmed translation in the locale's catalog."""
    template = extract()
    path = po_path(locale)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id)
        if (
            found is None
            or found.fuzzy
            or not (all(found.string) if isinstance(found.string, tuple | list) else found.string)
        ):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing
