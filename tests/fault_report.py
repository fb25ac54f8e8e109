"""The counts each fault-injection round reports, printed at the end of the test run."""

from __future__ import annotations

from typing import Any

REPORTS: list[tuple[str, dict[str, Any]]] = []
