"""Full-text search over a case type's FAQ, in Polish and English, while the participant
types a question.

The FAQ is a handful of entries per case type, in the descriptor: it is indexed in memory
when first searched, and the search never touches the database. Words are stemmed with the
Snowball stemmers (``snowballstemmer``, BSD-3-Clause; Polish since Snowball 3.0), the same
algorithms PostgreSQL's text search uses for English. PostgreSQL ships no Polish
configuration (it needs an ispell dictionary installed on the server) and the demo runs on
SQLite, so the search is done here, alike on every database.

Stems are compared without diacritics, so "dochod" finds "dochód" and "zaswiadczenie"
finds "zaświadczenie", as people type on phones. The last word of a question still being
typed also matches as the beginning of a word. Entries are ranked by BM25, the question's
words counting twice the answer's.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import snowballstemmer

from panel_core.cases.case_types import Descriptor
from panel_core.i18n import DEFAULT_LOCALE, LOCALES, pick

MAX_SUGGESTIONS: Final = 3
# A question this short says too little to suggest anything.
MIN_QUERY_CHARS: Final = 3
_MIN_PREFIX: Final = 3
_QUESTION_WEIGHT: Final = 2
_K1: Final = 1.2
_B: Final = 0.75
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that carry no meaning of their own in a question: never what an entry is about.
_STOP_WORDS: Final = {
    "pl": _words(
        """a aby ale albo ani bo by być był była było co czy dla do gdy gdzie go i ich ile
    im inne innych ja jak jaki jakie je jego jej jest jestem już lub ma mam mi mnie moja
    moje mój mogę może można mu my na nam nas nie nic niż o od oraz po pod przez przy
    się są ta tak tam te tego tej ten to ty tylko u w we więc wy z za ze że żeby"""
    ),
    "en": _words(
        """a about an and are as at be been but by can could do does for from had has have
    how i if in into is it its me my no not of on or our so than that the their them
    then there these they this to us was we what when where which who why will with
    would you your"""
    ),
}
_STEMMERS: Final = {"pl": "polish", "en": "english"}
# Polish endings as typed without diacritics, and as written.
_PL_ENDINGS: Final = (
    ("osci", "ości"),
    ("osc", "ość"),
    ("ow", "ów"),
    ("ac", "ać"),
    ("ec", "eć"),
    ("ic", "ić"),
    ("a", "ą"),
    ("e", "ę"),
)


def fold(word: str) -> str:
    """Lower case without diacritics ("ł" has none in Unicode, so it is folded by hand)."""
    decomposed = unicodedata.normalize("NFKD", word.lower().replace("ł", "l"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Suggestion:
    # The entry's position in the descriptor's FAQ.
    entry: int
    question: str
    answer: str
    score: float


@dataclass(frozen=True, slots=True)
class _Document:
    entry: int
    question: str
    answer: str
    terms: Counter[str]
    length: float
    # Every word as written (folded), for the word still being typed.
    words: frozenset[str]


class FaqIndex:
    """The FAQ of one case type in one language, ready to search."""

    def __init__(self, locale: str, entries: Iterable[tuple[int, str, str]]) -> None:
        self.locale = locale if locale in _STEMMERS else DEFAULT_LOCALE
        self._stemmer = snowballstemmer.stemmer(_STEMMERS[self.locale])
        self._lock = threading.Lock()
        documents = []
        for entry, question, answer in entries:
            terms: Counter[str] = Counter()
            for stems in self._terms(question):
                for term in stems:
                    terms[term] += _QUESTION_WEIGHT
            for stems in self._terms(answer):
                for term in stems:
                    terms[term] += 1
            words = frozenset(fold(w) for w in _WORD.findall(f"{question} {answer}"))
            documents.append(
                _Document(entry, question, answer, terms, float(sum(terms.values())), words)
            )
        self._documents = documents
        self._average = sum(d.length for d in documents) / len(documents) if documents else 1.0
        frequency: Counter[str] = Counter()
        for document in documents:
            frequency.update(set(document.terms))
        total = len(documents)
        self._idf = {
            term: math.log(1 + (total - count + 0.5) / (count + 0.5))
            for term, count in frequency.items()
        }

    def _stem(self, word: str) -> str:
        # A Snowball stemmer keeps state between calls: one caller at a time.
        with self._lock:
            stem: str = self._stemmer.stemWord(word.lower())
        return fold(stem)

    def _terms(self, text: str) -> list[frozenset[str]]:
        """Each meaningful word's stems: of the word as written and as typed without its
        diacritics, which the stemmer may cut differently ("dochodów", "dochodow")."""
        stop = _STOP_WORDS[self.locale]
        return [
            frozenset(self._stem(variant) for variant in self._spellings(word))
            for word in _WORD.findall(text)
            if word.lower() not in stop and fold(word) not in stop
        ]

    def _spellings(self, word: str) -> list[str]:
        folded = fold(word)
        spellings = [word, folded]
        if self.locale == "pl" and folded == word.lower():
            # The stemmer knows the endings by their diacritics: "dochodow" is cut as
            # "dochodów" only once its ending is written so.
            spellings.extend(
                folded[: -len(bare)] + written
                for bare, written in _PL_ENDINGS
                if folded.endswith(bare) and len(folded) > len(bare) + 2
            )
        return spellings

    def search(
        self, query: str, *, typing: bool = False, limit: int = MAX_SUGGESTIONS
    ) -> list[Suggestion]:
        """The entries that match ``query``, best first. ``typing``: the last word may be
        unfinished, and matches as the beginning of a word."""
        if len(query.strip()) < MIN_QUERY_CHARS or not self._documents:
            return []
        terms = self._terms(query)
        words = _WORD.findall(query)
        prefix = fold(words[-1]) if typing and words and not query[-1:].isspace() else ""
        if len(prefix) < _MIN_PREFIX:
            prefix = ""
        found = []
        for document in self._documents:
            score = self._bm25(document, terms)
            if prefix and not score and any(word.startswith(prefix) for word in document.words):
                score = 0.5 * self._idf_floor
            if score > 0:
                found.append(Suggestion(document.entry, document.question, document.answer, score))
        found.sort(key=lambda s: (-s.score, s.entry))
        return found[:limit]

    @property
    def _idf_floor(self) -> float:
        return min(self._idf.values(), default=1.0)

    def _bm25(self, document: _Document, terms: Sequence[frozenset[str]]) -> float:
        norm = _K1 * (1 - _B + _B * document.length / self._average)
        score = 0.0
        # A word counts once, by the best of its stems.
        for stems in set(terms):
            best = 0.0
            for term in stems:
                count = float(document.terms.get(term, 0))
                if count:
                    best = max(best, self._idf[term] * count * (_K1 + 1) / (count + norm))
            score += best
        return score


_INDEXES: dict[tuple[str, tuple[tuple[int, str, str], ...]], FaqIndex] = {}
_INDEXES_LOCK = threading.Lock()
# Descriptor versions a process keeps indexes of, at most.
_MAX_INDEXES = 256


def faq_index(descriptor: Descriptor, locale: str, role: str | None) -> FaqIndex:
    """The FAQ entries a participant of ``role`` is shown (all, for staff: None), in
    ``locale``, indexed once per process for each wording of them."""
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    entries = tuple(
        (position, pick(entry.question, locale), pick(entry.answer, locale))
        for position, entry in enumerate(descriptor.faq)
        if role is None or not entry.roles or role in entry.roles
    )
    key = (locale, entries)
    with _INDEXES_LOCK:
        found = _INDEXES.get(key)
        if found is None:
            if len(_INDEXES) >= _MAX_INDEXES:
                _INDEXES.clear()
            found = _INDEXES[key] = FaqIndex(locale, entries)
    return found
