"""Prometheus metrics of the panel's processes (the BFF's ``/metrics``, the workers' port).

Counters are kept per process and summed by Prometheus. What is a property of the shared
state (outbox depth, the engine record consumer's lag) is read from PostgreSQL and Redis when
scraped, by the workers' collectors (``workers/observability.py``), so every worker reports
the same truth rather than its own view of it.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

OUTBOX_OUTCOMES: Final = Counter(
    "panel_outbox_attempts",
    "Delivery attempts of outbox rows, by outbox and outcome "
    "(completions: delivered, deferred, rejected, unconfirmed).",
    ["outbox", "outcome"],
)
LOGIN_OUTCOMES: Final = Counter(
    "panel_login_outcomes",
    "Answers of the participant login steps, by outcome.",
    ["outcome"],
)
DEAD_LETTERS: Final = Counter(
    "panel_engine_records_dead_lettered",
    "Engine records set aside in the dead-letter stream, by source stream and reason.",
    ["stream", "reason"],
)
ENGINE_RECORDS: Final = Counter(
    "panel_engine_records_applied",
    "Engine records applied to the panel's database, by stream.",
    ["stream"],
)
RECORDS_DEFERRED: Final = Counter(
    "panel_engine_records_deferred",
    "Engine records left pending because what they refer to is not known yet, by stream.",
    ["stream"],
)
RETENTION_CASES: Final = Counter(
    "panel_retention_cases",
    "Closed cases the retention job handled, by outcome (purged, failed).",
    ["outcome"],
)
RETENTION_ROWS: Final = Counter(
    "panel_retention_rows_purged",
    "Rows of personal data the retention job removed or cleared, by kind.",
    ["kind"],
)
CONVERSATIONS: Final = Counter(
    "panel_conversations",
    "Participants' questions, by who answered them: faq (an entry of the case type's FAQ, "
    "no employee needed) or bank. The FAQ's share is faq / (faq + bank).",
    ["resolution"],
)
DUPLICATE_INSTANCES: Final = Counter(
    "panel_duplicate_process_instances",
    "Second process instances of one case found and cancelled.",
)


def observe_outbox(kind: str, outcome: str) -> None:
    OUTBOX_OUTCOMES.labels(kind, outcome).inc()
