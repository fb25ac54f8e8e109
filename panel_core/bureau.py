"""The credit bureau the credit case type asks before the analyst's review.

What is sent: the case id as the request's reference and, per participant, the keyed blind
index of their PESEL (``Participant.pesel_index``, an HMAC the bureau cannot turn back into a
number), nothing else: no PESEL, name, phone or answer. A bank connecting a real bureau agrees
with it on that pseudonym (or puts a translating gateway in between); the panel never holds
the PESEL to send.

``POST {bureau}/v1/checks`` with ``{"reference": "<case id>", "subjects": ["<index>", ...]}``
answers ``{"reference": ..., "results": [{"subject": ..., "found": true, "score": 640}, ...]}``.

Every answer is classified here, so the worker only maps the outcome onto the job:

* a result (every participant found): ``BureauResult``;
* a participant the bureau does not know: ``BureauNotFoundError``, a business outcome;
* no answer in time, no connection, a 4xx/5xx, or an answer that is not the one above:
  ``BureauFaultError``, a technical fault worth trying again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

CHECKS_PATH = "/v1/checks"
# Scores outside this range are no score the panel knows how to read.
MIN_SCORE = 0
MAX_SCORE = 1000


class BureauFaultError(RuntimeError):
    """The bureau could not give an answer now; asking again later may succeed."""


class BureauNotFoundError(LookupError):
    """The bureau answered that it does not know some of the participants."""

    def __init__(self, missing: int, asked: int) -> None:
        super().__init__(f"The credit bureau does not know {missing} of {asked} participant(s).")
        self.missing = missing
        self.asked = asked


@dataclass(frozen=True, slots=True)
class BureauResult:
    # The lowest score among the participants: the one the analyst must weigh.
    score: int
    subjects: int

    def as_variable(self) -> dict[str, Any]:
        """The process variable: no identifier of anyone, only what the bureau concluded."""
        return {"found": True, "score": self.score, "subjects": self.subjects}


class _Subject(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    subject: str
    found: bool
    score: int | None = None


class _Answer(msgspec.Struct, frozen=True):
    reference: str
    results: list[_Subject]


def _classify(answer: _Answer, reference: str, subjects: Sequence[str]) -> BureauResult:
    if answer.reference != reference:
        raise BureauFaultError("The credit bureau answered about another request.")
    by_subject = {result.subject: result for result in answer.results}
    if set(by_subject) != set(subjects):
        raise BureauFaultError("The credit bureau's answer does not cover the subjects asked.")
    missing = sum(1 for result in by_subject.values() if not result.found)
    if missing:
        raise BureauNotFoundError(missing, len(subjects))
    scores = [result.score for result in by_subject.values()]
    if any(score is None or not MIN_SCORE <= score <= MAX_SCORE for score in scores):
        raise BureauFaultError("The credit bureau's answer has a missing or unknown score.")
    return BureauResult(score=min(s for s in scores if s is not None), subjects=len(subjects))


async def check_subjects(
    http: httpx.AsyncClient,
    base_url: str,
    *,
    reference: str,
    subjects: Sequence[str],
    timeout_seconds: float,
) -> BureauResult:
    """Ask the bureau about ``subjects`` (PESEL blind indexes) of the case ``reference``.

    Messages name no case and no person, so that failures of many cases read the same and
    the dashboard groups them as one problem.
    """
    if not base_url:
        raise BureauFaultError("The credit bureau is not configured (PANEL_BUREAU_URL).")
    if not subjects:
        raise ValueError("There is nobody to ask the credit bureau about.")
    try:
        response = await http.post(
            base_url.rstrip("/") + CHECKS_PATH,
            json={"reference": reference, "subjects": list(subjects)},
            timeout=timeout_seconds,
        )
    except httpx.TimeoutException as exc:
        raise BureauFaultError(
            f"The credit bureau did not answer within {timeout_seconds:g} s."
        ) from exc
    except httpx.HTTPError as exc:
        raise BureauFaultError(
            f"The credit bureau cannot be reached ({type(exc).__name__})."
        ) from exc
    if response.status_code != 200:
        raise BureauFaultError(f"The credit bureau answered HTTP {response.status_code}.")
    try:
        answer = msgspec.json.decode(response.content, type=_Answer)
    except msgspec.MsgspecError as exc:
        raise BureauFaultError("The credit bureau's answer is malformed.") from exc
    return _classify(answer, reference, subjects)
