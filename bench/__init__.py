"""Helm's benchmarks: every line measured beside its baseline in one run.

Each ``bench/bench_*.py`` module defines ``async def run() -> list[Line]``. ``python -m bench``
runs them all, prints a table and writes ``bench/results/latest.json`` and ``latest.md``.
A benchmark never fails the tests: it reports a ratio and the goal beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Line:
    """One benchmark line: a measured figure beside the baseline measured in the same run."""

    name: str
    figure: float
    baseline: float
    unit: str
    goal: str
    ratio: float | None = None
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_line(
    name: str, figure: float, baseline: float, unit: str, goal: float, **extra: Any
) -> Line:
    """A line whose goal is ``figure / baseline >= goal``."""
    ratio = figure / baseline if baseline else 0.0
    return Line(name, figure, baseline, unit, f"ratio >= {goal}", ratio, ratio >= goal, extra)
