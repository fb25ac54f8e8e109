"""The application a participant signs, as a document: what it says, in their language.

:func:`application_page` turns what the participant submitted into an
:class:`ApplicationPage`: headings, their answers as label and value (amounts, dates and
times written the way their language writes them), the consents they gave (the form's
explanation they share shown once, then each consent's own statement, with the fingerprint
of the exact text recorded), the closing declaration, and an appendix of the files they
attached, by name and SHA-256. Every text in it is final, already translated and formatted: the task
page shows it as HTML (``templates/signing.html.j2``) and :mod:`panel_core.tasks.document_pdf`
lays the same texts out as the PDF that is signed, so what is read is what is signed.

The page is a value: built twice from the same data it is equal, and so is its PDF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Protocol

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, list_currencies

from panel_core.forms import FORM_ZONE, input_components, localise, text_html
from panel_core.forms.answers import value_text
from panel_core.forms.values import local_datetime, parse_date, parse_time
from panel_core.i18n import LOCALES, current_locale
from panel_core.i18n import gettext as _
from panel_core.tasks.consents import consent_parts, consent_text

# What stands for an answer left empty, so a blank is seen as one and not as a gap.
EMPTY = "—"
_HEADING_TAG = re.compile(r"<(/?)h([2-6])>")


class AttachedFile(Protocol):
    @property
    def id(self) -> Any: ...

    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


class GivenConsent(Protocol):
    @property
    def panel_task_id(self) -> Any: ...

    @property
    def consent_key(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def text_sha256(self) -> str: ...

    @property
    def given_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Answered:
    """A task of the participant's with the answers of its submission that stands."""

    task_id: Any
    title: str
    schema: Mapping[str, Any]
    answers: Mapping[str, Any]
    sent_at: datetime
    # Answers shown elsewhere in the document (the consents).
    skip: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Section:
    """One task's answers."""

    title: str
    # When they were sent, written out ("Sent on …").
    sent: str
    fields: tuple[Fact, ...]


@dataclass(frozen=True, slots=True)
class Consent:
    # The consent's own words, plain text; empty when its whole text is the group's.
    statement: str
    # When it was given and the SHA-256 of the exact text recorded, written out.
    note: str


@dataclass(frozen=True, slots=True)
class ConsentGroup:
    """The consents given in one form: the form's explanation once, then each consent."""

    # Markdown, as the form has it (the renderers turn it into headings, lists, emphasis).
    intro: str
    consents: tuple[Consent, ...]

    def intro_html(self, top: int) -> str:
        """The explanation as escaped HTML whose top heading is ``h<top>``, to fit the
        outline of the page it is shown in."""
        return shift_headings(text_html(self.intro), top) if self.intro else ""


@dataclass(frozen=True, slots=True)
class Attachment:
    number: int
    name: str
    # The answer the file was sent with.
    field: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Headings:
    """The document's own words, in its language."""

    consents: str
    declaration: str
    appendix: str
    appendix_intro: str
    attachment_number: str
    attachment_name: str
    attachment_field: str
    fingerprint: str
    # With ``{page}`` and ``{pages}`` in place of the numbers.
    page_of: str


@dataclass(frozen=True, slots=True)
class ApplicationPage:
    locale: str
    title: str
    facts: tuple[Fact, ...]
    sections: tuple[Section, ...]
    consents: tuple[ConsentGroup, ...]
    declaration: str
    attachments: tuple[Attachment, ...]
    headings: Headings
    # The latest moment the content comes from: the PDF's date, so that a rebuild of the
    # same content carries the same date.
    as_of: datetime


def shift_headings(html: str, top: int) -> str:
    """Markdown's HTML starts its headings at ``h2``; move them so the top one is ``h<top>``."""
    return _HEADING_TAG.sub(lambda m: f"<{m[1]}h{min(int(m[2]) - 2 + top, 6)}>", html)


def moment_text(moment: datetime, locale: str | None = None) -> str:
    """A moment as the participant's language writes a date and a time, in Polish time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(FORM_ZONE)
    return day_and_time(local.date(), local.time(), locale)


def day_and_time(day: date, wall: time, locale: str | None = None) -> str:
    locale = locale or current_locale()
    return f"{format_date(day, 'long', locale=locale)}, {format_time(wall, 'short', locale=locale)}"


def number_text(value: Any, component: Mapping[str, Any], locale: str | None = None) -> str:
    """A number with the language's separators, never rounded: as many decimals as the
    field allows (or the value has); an amount in a currency the field's adorner names
    (``PLN``, ``EUR``) is written as the language writes money."""
    locale = locale or current_locale()
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    appearance = component.get("appearance")
    appearance = appearance if isinstance(appearance, Mapping) else {}
    prefix = str(appearance.get("prefixAdorner") or "").strip()
    suffix = str(appearance.get("suffixAdorner") or "").strip()
    currency = next((a.upper() for a in (suffix, prefix) if a.upper() in _currencies()), "")
    if currency:
        money: str = format_currency(number, currency, locale=locale, decimal_quantization=False)
        return money
    digits = component.get("decimalDigits")
    if isinstance(digits, int | str) and str(digits).isdigit():
        decimals = int(digits)
    else:
        exponent = number.normalize().as_tuple().exponent
        decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    # Without quantization a value with more decimals than the pattern keeps them all.
    written: str = format_decimal(number, format=pattern, locale=locale, decimal_quantization=False)
    return " ".join(part for part in (prefix, written, suffix) if part)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def datetime_text(
    value: Any, component: Mapping[str, Any], on: date, locale: str | None = None
) -> str:
    """A date, time or date-and-time field's value as the language writes it.

    A time stored with a UTC offset is shown as the wall clock in Poland on ``on`` (the day
    it was sent), as the page showed it then, and the same on every rebuild.
    """
    locale = locale or current_locale()
    text = str(value).strip()
    subtype = component.get("subtype") or "date"
    if subtype == "time":
        parsed = parse_time(text)
        if parsed is None:
            return text
        minutes = local_datetime(on, *parsed)[1]
        return str(format_time(time(minutes // 60, minutes % 60), "short", locale=locale))
    day_text, _sep, time_text = text.partition("T")
    day = parse_date(day_text)
    if day is None:
        return text
    if subtype != "datetime":
        return str(format_date(day, "long", locale=locale))
    parsed_time = parse_time(time_text)
    if parsed_time is None:
        return text
    day, minutes = local_datetime(day, *parsed_time)
    return day_and_time(day, time(minutes // 60, minutes % 60), locale)


def application_page(
    *,
    title: str,
    case_number: str,
    signer: str,
    answered: Sequence[Answered],
    documents: Mapping[str, AttachedFile],
    consents: Sequence[GivenConsent],
    since: datetime,
) -> ApplicationPage:
    """The document, in the current language, from what the participant submitted.

    ``consents`` in the order they were given; ``since`` (the case's opening) dates a
    document with nothing sent yet.
    """
    attachments: dict[str, Attachment] = {}
    sections = []
    for task in answered:
        sent = task.sent_at if task.sent_at.tzinfo else task.sent_at.replace(tzinfo=UTC)
        on = sent.astimezone(FORM_ZONE).date()
        fields = tuple(_fields(task, documents, attachments, on))
        # A form of consents alone is shown in the consents, with the time each was given.
        if fields:
            sections.append(Section(task.title, _("Sent %(when)s", when=moment_text(sent)), fields))
    schemas = {task.task_id: task.schema for task in answered}
    moments = [since, *(t.sent_at for t in answered), *(c.given_at for c in consents)]
    return ApplicationPage(
        locale=current_locale(),
        title=title,
        facts=(Fact(_("Case number"), case_number), Fact(_("Signed by"), signer)),
        sections=tuple(sections),
        consents=tuple(_consent_groups(consents, schemas)),
        declaration=_(
            "By entering the code sent to my phone I confirm that the information above is "
            "true and complete, and I sign this application."
        ),
        attachments=tuple(attachments.values()),
        headings=Headings(
            consents=_("Consents given"),
            declaration=_("Declaration"),
            appendix=_("Appendix: attached files"),
            appendix_intro=_(
                "The files sent with this application. Each one is identified by its SHA-256 "
                "fingerprint: a file whose fingerprint is the same is exactly the file sent."
            ),
            attachment_number=_("No."),
            attachment_name=_("File"),
            attachment_field=_("Sent as"),
            fingerprint=_("SHA-256 fingerprint"),
            page_of=_("Page %(number)s of %(pages)s", number="{page}", pages="{pages}"),
        ),
        as_of=max(_aware(moment) for moment in moments),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fields(
    task: Answered,
    documents: Mapping[str, AttachedFile],
    attachments: dict[str, Attachment],
    on: date,
) -> Iterable[Fact]:
    for component in input_components(localise(task.schema)):
        key = component["key"]
        if key not in task.answers or key in task.skip:
            continue
        label = str(component.get("label") or key)
        yield Fact(label, _value(component, task.answers[key], documents, attachments, on))


def _value(
    component: Mapping[str, Any],
    value: Any,
    documents: Mapping[str, AttachedFile],
    attachments: dict[str, Attachment],
    on: date,
) -> str:
    kind = component.get("type")
    if value is None or value == "" or value == []:
        return EMPTY
    if kind == "filepicker":
        label = str(component.get("label") or component.get("key"))
        return "\n".join(
            _attached(str(item), label, documents, attachments)
            for item in (value if isinstance(value, list) else [value])
        )
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    options = {
        str(option.get("value")): str(option.get("label"))
        for option in component.get("values") or []
        if isinstance(option, Mapping)
    }
    if options:
        items = value if isinstance(value, list) else [value]
        if all(isinstance(item, str | int | float) for item in items):
            return ", ".join(options.get(str(item), str(item)) for item in items)
    if kind == "number" and isinstance(value, int | float | str):
        return number_text(value, component)
    if kind == "datetime" and isinstance(value, str):
        return datetime_text(value, component, on)
    return value_text(value, documents)


def _attached(
    document_id: str,
    label: str,
    documents: Mapping[str, AttachedFile],
    attachments: dict[str, Attachment],
) -> str:
    document = documents.get(document_id)
    if document is None:
        return document_id
    attachment = attachments.setdefault(
        document_id,
        Attachment(len(attachments) + 1, document.filename, label, document.sha256),
    )
    return _("%(name)s (appendix, no. %(number)s)", name=attachment.name, number=attachment.number)


def _consent_groups(
    consents: Sequence[GivenConsent], schemas: Mapping[Any, Mapping[str, Any]]
) -> Iterable[ConsentGroup]:
    by_task: dict[Any, dict[tuple[str, str], GivenConsent]] = {}
    for consent in consents:
        # The same consent given again with the same text (a task sent again) is one.
        key = (consent.consent_key, consent.text_sha256)
        by_task.setdefault(consent.panel_task_id, {}).setdefault(key, consent)
    for task_id, given in by_task.items():
        split = _split(list(given.values()), schemas.get(task_id) or {})
        if split is None:
            # Text the form no longer explains the same way: each consent whole, as given.
            for consent in given.values():
                yield ConsentGroup(consent.text, (Consent("", _consent_note(consent)),))
            continue
        intro, statements = split
        yield ConsentGroup(
            intro,
            tuple(Consent(statements[c.consent_key], _consent_note(c)) for c in given.values()),
        )


def _split(
    given: Sequence[GivenConsent], schema: Mapping[str, Any]
) -> tuple[str, dict[str, str]] | None:
    """The form's shared explanation and each consent's statement, when together they
    are exactly the texts recorded, in any of the languages they may have been given in."""
    for locale in LOCALES:
        intro, statements = consent_parts(localise(schema, locale))
        if all(
            c.consent_key in statements and consent_text(intro, statements[c.consent_key]) == c.text
            for c in given
        ):
            return intro, statements
    return None


def _consent_note(consent: GivenConsent) -> str:
    return _(
        "Given %(when)s; SHA-256 of its text: %(hash)s",
        when=moment_text(consent.given_at),
        hash=consent.text_sha256,
    )
