"""The chat's knowledge base and how messages are shown: what a participant typing a question
is offered, and which addresses in a message become links.

The FAQ is the shipped credit descriptor's (and a designer's, written here): the search is
the one the panel runs, with the real Snowball stemmers.
"""

from __future__ import annotations

import msgspec
import pytest

from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor, FaqEntry
from panel_core.conversations.faq import faq_index
from panel_core.conversations.links import allowed_hosts, render_message
from tests import credit
from tests.conftest import REPO_ROOT

# The shipped credit FAQ's first entry: which proof of income to send.
INCOME = 0
PESEL = 1


def shipped() -> Descriptor:
    return case_types.parse(
        (REPO_ROOT / "bpmn" / "credit-application" / "credit-application.case.json").read_bytes()
    )


def found(query: str, locale: str = "pl", *, typing: bool = False) -> list[int]:
    return [s.entry for s in faq_index(shipped(), locale, None).search(query, typing=typing)]


def test_the_shipped_faq_has_the_income_entry_these_tests_look_for() -> None:
    entry = shipped().faq[INCOME]
    assert "dochodach" in entry.question["pl"] and "income" in entry.question["en"]


@pytest.mark.parametrize(
    "question",
    [
        "Które dochodów?",
        "dochody",
        "Co z moimi dochodami?",
        "dochód",
        "zaświadczenia",
    ],
)
def test_a_polish_question_finds_the_income_entry_whatever_the_word_form(question: str) -> None:
    assert found(question)[:1] == [INCOME]


@pytest.mark.parametrize(
    "question",
    ["jakie zaswiadczenie o dochodach", "ZASWIADCZENIE", "dochod", "dochodow", "zarobkow"],
)
def test_a_question_typed_without_diacritics_finds_the_same_entry(question: str) -> None:
    assert found(question)[:1] == [INCOME]


@pytest.mark.parametrize("question", ["incomes", "What proofs should I send?", "earning"])
def test_an_english_question_is_stemmed(question: str) -> None:
    assert found(question, "en")[:1] == [INCOME]


def test_the_last_word_still_being_typed_matches_as_the_beginning_of_a_word() -> None:
    assert found("zaświad", typing=True)[:1] == [INCOME]
    assert found("proof of inc", "en", typing=True)[:1] == [INCOME]
    # Sent, the unfinished word is a word like any other, and matches nothing.
    assert found("zaświad") == []
    # A finished word (a space after it) is not a prefix any more.
    assert found("zaświad ", typing=True) == []
    # Two letters say too little.
    assert found("za", typing=True) == []


@pytest.mark.parametrize(
    ("question", "locale"),
    [("czy jak i ale", "pl"), ("Which is what", "en"), ("a", "pl"), ("", "en"), ("   ", "pl")],
)
def test_stop_words_alone_find_nothing(question: str, locale: str) -> None:
    assert found(question, locale) == []


def designers(*entries: FaqEntry) -> Descriptor:
    return msgspec.structs.replace(shipped(), faq=list(entries))


def entry(pl: str, en: str, answer: str = "Odpowiedź.", roles: list[str] | None = None) -> FaqEntry:
    return FaqEntry(
        question={"pl": pl, "en": en}, answer={"pl": answer, "en": answer}, roles=roles or []
    )


def test_an_entry_for_one_role_is_not_offered_to_another() -> None:
    descriptor = designers(
        entry("Czy muszę podpisać umowę?", "Must I sign the contract?"),
        entry(
            "Czy jako poręczyciel podpisuję umowę?",
            "Do I sign the contract as a guarantor?",
            roles=[credit.ROLE_PRIMARY_BORROWER],
        ),
    )
    borrower = faq_index(descriptor, "pl", credit.ROLE_PRIMARY_BORROWER).search("umowa podpis")
    assert sorted(s.entry for s in borrower) == [0, 1]
    other = faq_index(descriptor, "pl", "co-borrower").search("umowa podpis")
    assert [s.entry for s in other] == [0]
    assert all("poręczyciel" not in s.question for s in other)
    # Staff see the whole FAQ.
    assert len(faq_index(descriptor, "en", None).search("sign contract")) == 2


def test_the_entry_that_answers_the_question_best_is_first() -> None:
    descriptor = designers(
        entry("Kiedy bank wypłaci kredyt?", "When is the loan paid out?", "Po podpisaniu umowy."),
        entry(
            "Jak długo bank rozpatruje wniosek?",
            "How long does the bank take?",
            "Zwykle do pięciu dni roboczych od wysłania dokumentów.",
        ),
        entry(
            "Czy mogę wysłać dokumenty jeszcze raz?",
            "May I send the documents again?",
            "Tak, w zadaniu, dopóki bank ich nie sprawdził.",
        ),
    )
    ranked = faq_index(descriptor, "pl", None).search("wysłać dokumenty jeszcze raz")
    assert [s.entry for s in ranked][:1] == [2]
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    english = faq_index(descriptor, "en", None).search("when is my loan paid out")
    assert [s.entry for s in english][:1] == [0]


def test_the_suggestions_are_in_the_participants_language() -> None:
    [polish] = faq_index(shipped(), "pl", None).search("PESEL")
    [english] = faq_index(shipped(), "en", None).search("PESEL")
    assert polish.entry == english.entry == PESEL
    assert polish.question.startswith("Dlaczego") and english.question.startswith("Why")


# Links in messages.

BANK = allowed_hosts("bank.example.pl, pomoc.bank.example.pl")


def test_a_link_to_an_allowed_host_or_its_subdomain_is_clickable() -> None:
    html = str(render_message("Formularz: https://bank.example.pl/wnioski/dochody.", BANK))
    assert '<a href="https://bank.example.pl/wnioski/dochody" rel="noopener noreferrer"' in html
    # The full stop ends the sentence, not the address.
    assert "</a>." in html
    sub = str(render_message("https://oddzialy.bank.example.pl/krakow", BANK))
    assert '<a href="https://oddzialy.bank.example.pl/krakow"' in sub
    # The setting's spelling does not matter: upper case, a trailing dot.
    assert "<a " in str(
        render_message("https://Bank.Example.PL/", allowed_hosts("BANK.example.pl."))
    )


@pytest.mark.parametrize(
    "text",
    [
        "https://bank.example.pl.evil.com/login",
        "https://bank-example.pl/login",
        "https://evilbank.example.pl.com/",
        "https://examplebank.example.pl.attacker.net/",
        "http://bank.example.pl/login",
        "https://bank.example.pl@evil.com/login",
        "https://user:pass@bank.example.pl/",
        "https://bank.example.pl:8443/login",
        "https://bank.example.pl:444/",
        "https://[::1]/",
    ],
)
def test_look_alike_hosts_other_schemes_userinfo_and_ports_stay_plain_text(text: str) -> None:
    html = str(render_message(f"Zobacz {text} teraz", BANK))
    assert "<a " not in html, html
    assert "href" not in html


def test_a_link_whose_host_only_looks_allowed_is_not_clickable_when_the_host_is_a_suffix() -> None:
    # "example.pl" allowed must not make "notexample.pl" clickable.
    hosts = allowed_hosts("example.pl")
    assert "<a " not in str(render_message("https://notexample.pl/", hosts))
    assert "<a " in str(render_message("https://www.example.pl/", hosts))


def test_without_an_allow_list_nothing_is_a_link() -> None:
    assert "<a " not in str(render_message("https://bank.example.pl/"))
    assert "<a " not in str(render_message("https://bank.example.pl/", allowed_hosts("")))


@pytest.mark.parametrize(
    "text",
    [
        '<script>alert("x")</script>',
        '<a href="https://evil.com">https://bank.example.pl/</a>',
        "<img src=x onerror=alert(1)>",
        'https://bank.example.pl/"onmouseover="alert(1)',
        "https://bank.example.pl/<script>alert(1)</script>",
        "https://bank.example.pl/?q=<b>x</b>&a=1",
    ],
)
def test_html_in_a_message_is_escaped_and_cannot_make_its_own_link(text: str) -> None:
    html = str(render_message(text, BANK))
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert 'href="https://evil.com"' not in html
    assert "onmouseover=" not in html.replace("&#34;onmouseover=&#34;", "")
    # At most the allowed address itself became a link, its markup escaped inside.
    assert html.count("<a ") <= 1
    if "<a " in html:
        href = html.split('href="', 1)[1].split('"', 1)[0]
        assert href.startswith("https://bank.example.pl/")
        assert "<" not in href and ">" not in href


def test_line_breaks_are_kept_and_ampersands_escaped() -> None:
    html = str(render_message("Dzień dobry,\nproszę o PIT & zaświadczenie.", BANK))
    assert html == "Dzień dobry,<br>\nproszę o PIT &amp; zaświadczenie."


def test_participants_messages_shown_to_staff_make_no_links_at_all() -> None:
    html = str(render_message("https://bank.example.pl/ <b>pilne</b>"))
    assert html == "https://bank.example.pl/ &lt;b&gt;pilne&lt;/b&gt;"
