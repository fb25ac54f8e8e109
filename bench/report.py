"""What every benchmark of the suite hands to ``python -m bench``: figures, each a ratio of a
measurement to a baseline measured in the same run, with the target it is checked against.

A benchmark module exposes ``async def run() -> list[Figure]`` (it starts and stops what it
needs itself) and may also be run alone (``python -m bench.<name>``), printing its own table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Direction = Literal["at-most", "at-least"]


@dataclass(frozen=True, slots=True)
class Figure:
    # Short id, as the issue and the operations guide name it ("P1 at 50 cases").
    name: str
    # What was measured, and its unit ("p95 ms", "records/s").
    unit: str
    value: float
    baseline: float
    # What the baseline is ("bare Redis reader", "/health on the same server").
    baseline_is: str
    target: float | None = None
    direction: Direction = "at-most"
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.baseline == 0:
            return math.inf if self.value else 1.0
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.direction == "at-most":
            return self.ratio <= self.target
        return self.ratio >= self.target

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["ratio"] = None if math.isinf(self.ratio) else round(self.ratio, 4)
        out["met"] = self.met
        return out


def table(figures: Sequence[Figure]) -> str:
    """The figures as a plain-text table."""
    header = (
        f"{'figure':<34}{'value':>12}{'baseline':>12}{'ratio':>8}  {'target':<10}{'met':<5}unit"
    )
    lines = [header, "-" * len(header)]
    for f in figures:
        target = "" if f.target is None else ("≤ " if f.direction == "at-most" else "≥ ")
        target += "" if f.target is None else f"{f.target:g}"
        met = {True: "yes", False: "NO", None: ""}[f.met]
        lines.append(
            f"{f.name:<34}{f.value:>12.2f}{f.baseline:>12.2f}{f.ratio:>8.2f}  {target:<10}"
            f"{met:<5}{f.unit} vs {f.baseline_is}"
        )
        if f.note:
            lines.append(f"{'':<4}{f.note}")
    return "\n".join(lines)


def to_json(figures: Sequence[Figure]) -> str:
    return json.dumps([f.as_json() for f in figures], ensure_ascii=False, indent=2)
