"""The document a participant signs: a PDF laid out from their answers, byte for byte the
same whenever the same answers are built again, readable in their language."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pikepdf
import pytest
from litestar.plugins.jinja import JinjaTemplateEngine

from panel_core.forms import localise
from panel_core.i18n import gettext, use_locale
from panel_core.tasks.consents import consent_texts, text_version
from panel_core.tasks.document_pdf import render_pdf
from panel_core.tasks.signed_document import (
    Answered,
    ApplicationPage,
    application_page,
    datetime_text,
    number_text,
)
from panel_core.tasks.signing import SignableDocument
from panel_web.pages import TEMPLATES_DIR, install_i18n
from tests import credit
from tests.conftest import REPO_ROOT
from tests.pdf_text import pdf_text

SENT = datetime(2025, 3, 30, 9, 15, tzinfo=UTC)
CASE_NUMBER = "KR-2025-000123"
PROOF = "zaświadczenie-o-dochodach.pdf"
PROOF_SHA256 = hashlib.sha256(b"the proof of income").hexdigest()
TASKS = {
    credit.FORM_QUESTIONNAIRE: uuid.UUID(int=1),
    credit.FORM_INCOME: uuid.UUID(int=2),
    credit.FORM_CONSENTS: uuid.UUID(int=3),
}
ANSWERS: dict[str, dict[str, Any]] = {
    credit.FORM_QUESTIONNAIRE: {"maritalStatus": "married", "dependants": 2},
    credit.FORM_INCOME: {
        "employmentType": "employed",
        "monthlyNetIncome": 7300,
        "employerName": "Zakład Łąkowy — zażółć gęślą jaźń",
        "incomeProof": ["d1"],
    },
    credit.FORM_CONSENTS: {"consentCreditCheck": True, "consentDataProcessing": True},
}


@dataclass(frozen=True)
class File:
    id: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Given:
    panel_task_id: uuid.UUID
    consent_key: str
    text: str
    text_sha256: str
    given_at: datetime


def form(form_id: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((credit.FOLDER / "forms" / f"{form_id}.form").read_text())
    return schema


def credit_page(locale: str, **changed: Any) -> ApplicationPage:
    """The credit application of one borrower, as the panel builds it from the database;
    ``changed`` overrides answers of the income form."""
    answers = {**ANSWERS, credit.FORM_INCOME: {**ANSWERS[credit.FORM_INCOME], **changed}}
    with use_locale(locale):
        consents = consent_texts(localise(form(credit.FORM_CONSENTS)))
        return application_page(
            title=f"Wniosek kredytowy {CASE_NUMBER}",
            case_number=CASE_NUMBER,
            signer="Kredytobiorca",
            answered=[
                Answered(
                    task_id=TASKS[form_id],
                    title=form_id,
                    schema=form(form_id),
                    answers=answers[form_id],
                    sent_at=SENT,
                    skip=frozenset(consents) if form_id == credit.FORM_CONSENTS else frozenset(),
                )
                for form_id in TASKS
            ],
            documents={"d1": File("d1", PROOF, PROOF_SHA256)},
            consents=[
                Given(TASKS[credit.FORM_CONSENTS], key, text, text_version(text), SENT)
                for key, text in consents.items()
            ],
            since=SENT,
        )


def fresh_pdf(page: ApplicationPage) -> bytes:
    """Laid out now, not taken from the renderer's cache of recent documents."""
    render_pdf.cache_clear()
    return render_pdf(page)


def test_the_same_application_is_the_same_pdf_byte_for_byte() -> None:
    first, second = credit_page("pl"), credit_page("pl")
    assert first is not second
    assert fresh_pdf(first) == fresh_pdf(second)


def test_another_process_builds_the_same_bytes() -> None:
    """As another replica of the panel would: a new interpreter, another hash seed, another
    time zone. The code sent by one replica is checked by another against its own build."""
    script = (
        "import hashlib; from tests.test_signed_document import credit_page; "
        "from panel_core.tasks.document_pdf import render_pdf; "
        "print(hashlib.sha256(render_pdf(credit_page('pl'))).hexdigest())"
    )
    built = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345", "TZ": "America/New_York"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert built.stdout.strip() == hashlib.sha256(fresh_pdf(credit_page("pl"))).hexdigest()


def test_changing_one_answer_changes_the_fingerprint() -> None:
    signed = SignableDocument(page := credit_page("pl"), fresh_pdf(page))
    changed_page = credit_page("pl", monthlyNetIncome=7301)
    changed = SignableDocument(changed_page, fresh_pdf(changed_page))
    assert changed.sha256 != signed.sha256
    assert "7 301,00" in pdf_text(changed.content)
    # The rest is as it was: the one answer is the whole difference.
    assert dataclasses.replace(changed_page, sections=page.sections) == page


@pytest.mark.parametrize(
    ("locale", "amount", "sent_on", "intro"),
    [
        ("pl", "7 300,00", "30 marca 2025, 11:15", "Aby rozpatrzyć ten wniosek kredytowy"),
        ("en", "7,300.00", "March 30, 2025, 11:15 AM", "To process this credit application"),
    ],
)
def test_the_pdf_reads_as_the_application_in_the_participants_language(
    locale: str, amount: str, sent_on: str, intro: str
) -> None:
    page = credit_page(locale)
    with warnings.catch_warnings():
        # fpdf2 warns of a character its font has no glyph for: there must be none.
        warnings.simplefilter("error")
        content = fresh_pdf(page)
    text = pdf_text(content)
    with pikepdf.open(BytesIO(content)) as pdf:
        count = len(pdf.pages)
    with use_locale(locale):
        expected = [
            f"Wniosek kredytowy {CASE_NUMBER}",
            f"{gettext('Case number')} {CASE_NUMBER}",
            f"{gettext('Signed by')} Kredytobiorca",
            credit.FORM_QUESTIONNAIRE,
            credit.FORM_INCOME,
            gettext("Sent %(when)s", when=sent_on),
            gettext("Consents given"),
            gettext("Declaration"),
            gettext("Appendix: attached files"),
        ]
        consents = consent_texts(localise(form(credit.FORM_CONSENTS)))
        statements = [
            str(c["label"])
            for c in localise(form(credit.FORM_CONSENTS))["components"]
            if c["type"] == "checkbox"
        ]
        file_answer = gettext("%(name)s (appendix, no. %(number)s)", name=PROOF, number=1)
        income_label = localise(form(credit.FORM_INCOME))["components"][1]["label"]
        footers = [
            gettext("Page %(number)s of %(pages)s", number=n, pages=count)
            for n in range(1, count + 1)
        ]
    for heading in expected:
        assert heading in text
    assert f"{income_label} {amount}" in text
    assert "zażółć gęślą jaźń" in text
    # The consents: their shared explanation once, as text rather than markdown, then each
    # consent's own words once, with the fingerprint of the exact text given.
    assert text.count(intro) == 1
    assert "###" not in text
    for statement, (key, whole) in zip(statements, consents.items(), strict=True):
        assert text.count(statement) == 1, key
        assert text_version(whole) in "".join(text.split())
    # A file is named where it was sent and fingerprinted in the appendix alone.
    assert file_answer in text
    assert text.count(PROOF_SHA256) == 1
    assert f"1. {PROOF}" in text.split(gettext("Appendix: attached files"))[-1]
    for footer in footers:
        assert footer in text


def test_the_pdf_embeds_its_font_and_carries_the_pages_metadata() -> None:
    page = credit_page("pl")
    with pikepdf.open(BytesIO(fresh_pdf(page))) as pdf:
        fonts = [font for p in pdf.pages for font in p.Resources.Font.values()]
        info = pdf.docinfo
        assert str(info.Title) == page.title
        # The date is the content's, not the clock's: the latest submission or consent.
        assert str(info.CreationDate).startswith("D:20250330091500")
        assert str(pdf.Root.Lang) == "pl"
        assert len(pdf.trailer.ID) == 2
        assert "/ModDate" not in info
    assert fonts
    for font in fonts:
        assert str(font.BaseFont).split("+")[-1].startswith("DejaVuSans")
        assert "/FontFile2" in font.DescendantFonts[0].FontDescriptor


def test_an_answer_is_shown_as_typed_even_where_it_looks_like_layout() -> None:
    typed = "{nb} {pages} ### **not bold**"
    text = pdf_text(fresh_pdf(credit_page("pl", employerName=typed)))
    assert typed in text


def test_a_consent_the_form_no_longer_explains_is_shown_whole_once() -> None:
    page = credit_page("en")
    old = "### Earlier wording\n\nA consent given under another version of the form."
    given = Given(TASKS[credit.FORM_CONSENTS], "consentCreditCheck", old, text_version(old), SENT)
    with use_locale("en"):
        page = application_page(
            title=page.title,
            case_number=CASE_NUMBER,
            signer="Kredytobiorca",
            answered=[],
            documents={},
            consents=[given],
            since=SENT,
        )
    text = pdf_text(fresh_pdf(page))
    assert text.count("Earlier wording") == 1 and "###" not in text
    assert text.count("A consent given under another version of the form.") == 1
    assert text_version(old) in "".join(text.split())


def test_numbers_and_dates_are_written_as_the_language_writes_them() -> None:
    income = {"type": "number", "decimalDigits": 2}
    assert number_text(7300, income, "pl") == "7\xa0300,00"
    assert number_text(7300, income, "en") == "7,300.00"
    # Never rounded: every decimal the answer has is shown.
    assert number_text("1234.5678", {"type": "number"}, "en") == "1,234.5678"
    money = {"type": "number", "appearance": {"suffixAdorner": "PLN"}}
    assert number_text(1500.5, money, "pl") == "1\xa0500,50\xa0zł"
    day = datetime(2025, 7, 1).date()
    assert datetime_text("2025-05-01", {"subtype": "date"}, day, "pl") == "1 maja 2025"
    assert datetime_text("2025-05-01", {"subtype": "date"}, day, "en") == "May 1, 2025"
    # A time stored in UTC is the wall clock in Poland on the day it was sent (summer time).
    assert datetime_text("12:30Z", {"subtype": "time"}, day, "pl") == "14:30"
    assert (
        datetime_text("2025-01-10T08:00Z", {"subtype": "datetime"}, day, "pl")
        == "10 stycznia 2025, 09:00"
    )


def render_signing_section(page: ApplicationPage, content: bytes, locale: str) -> str:
    engine = JinjaTemplateEngine(directory=TEMPLATES_DIR)
    install_i18n(engine)
    with use_locale(locale):
        return engine.engine.get_template("signing.html.j2").render(
            signing=SignableDocument(page, content),
            task=SimpleNamespace(id="task-1"),
            errors={},
            code_state="",
        )


def test_the_page_shows_what_the_pdf_says_as_a_document() -> None:
    page = credit_page("en")
    content = fresh_pdf(page)
    html = render_signing_section(page, content, "en")
    # The outline under the task page's h1 and the section's h2.
    assert '<h3 id="document-title">Wniosek kredytowy KR-2025-000123</h3>' in html
    assert "<h4>credit-income</h4>" in html
    assert "<h5>Your consents</h5>" in html and "###" not in html
    assert html.count("To process this credit application") == 1
    assert "<dt>Monthly net income (PLN)</dt><dd>7,300.00</dd>" in html
    assert f'<th scope="row">{PROOF}</th>' in html
    assert html.count(PROOF_SHA256) == 1
    sha256 = hashlib.sha256(content).hexdigest()
    assert f'name="documentSha256" value="{sha256}"' in html
    assert 'href="/tasks/task-1/signing-document"' in html
    # Every text of the page is in the PDF too.
    text = pdf_text(content)
    for section in page.sections:
        for field in section.fields:
            assert " ".join(field.value.split()) in text
