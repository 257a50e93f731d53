"""Drift rules over one agent's recent runs: pure, deterministic, checkpointable.

The three rules of the original Helm, as DESIGN.md states them (thresholds configurable):
- ``tokens_spike``: tokens per run > ratio x rolling median of the last N healthy runs
  (only after ``warmup_runs`` healthy runs, so a new agent is not judged on nothing);
- ``low_confidence``: confidence < minimum for K or more consecutive runs;
- ``repeated_retries``: retries in M or more of the last W runs.
A rule that fires starts its window afresh, so one episode yields one drift, and a run that
breaks any rule (or failed, or was a recovery probe) never enters the baseline.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from helm.config import DriftConfig
from helm.contracts import RunCompleted


@dataclass(frozen=True)
class Finding:
    rule: str
    metric: str
    observed: float
    baseline: float | None
    threshold: float
    window: int
    evidence: list[str]


@dataclass
class AgentWindow:
    """What the observer remembers of one agent: small and bounded."""

    tokens: deque[int] = field(default_factory=lambda: deque(maxlen=20))
    low_confidence: list[str] = field(default_factory=list)
    retries: deque[tuple[str, bool]] = field(default_factory=lambda: deque(maxlen=5))
    runs: int = 0
    drifts: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "tokens": list(self.tokens),
            "low_confidence": self.low_confidence,
            "retries": [list(x) for x in self.retries],
            "runs": self.runs,
            "drifts": self.drifts,
        }

    @classmethod
    def from_json(cls, data: dict[str, object], cfg: DriftConfig) -> AgentWindow:
        w = cls.new(cfg)
        w.tokens.extend(data.get("tokens", []))  # type: ignore[arg-type]
        w.low_confidence = list(data.get("low_confidence", []))  # type: ignore[call-overload]
        w.retries.extend((str(r), bool(b)) for r, b in data.get("retries", []))  # type: ignore[attr-defined]
        w.runs = int(data.get("runs", 0))  # type: ignore[call-overload]
        w.drifts = int(data.get("drifts", 0))  # type: ignore[call-overload]
        return w

    @classmethod
    def new(cls, cfg: DriftConfig) -> AgentWindow:
        return cls(tokens=deque(maxlen=cfg.baseline_runs), retries=deque(maxlen=cfg.retries_window))

    def median(self) -> float | None:
        return float(statistics.median(self.tokens)) if self.tokens else None


def evaluate(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> list[Finding]:
    """Apply one run to the window; return the rules it broke."""
    w.runs += 1
    found = [
        f for f in (_tokens(w, run, cfg), _confidence(w, run, cfg), _retries(w, run, cfg)) if f
    ]
    flagged = bool(found) or _suspect(run, cfg)
    if not flagged and not run.probe and run.outcome == "ok":
        w.tokens.append(run.total_tokens)
    w.drifts += len(found)
    return found


def _suspect(run: RunCompleted, cfg: DriftConfig) -> bool:
    low = run.confidence is not None and run.confidence < cfg.confidence_min
    return low or run.retries > 0


def _tokens(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    median = w.median()
    if median is None or len(w.tokens) < cfg.warmup_runs or run.outcome != "ok":
        return None
    threshold = cfg.tokens_ratio * median
    if run.total_tokens <= threshold:
        return None
    return Finding(
        "tokens_spike",
        "tokens_per_run",
        run.total_tokens,
        median,
        threshold,
        len(w.tokens),
        [run.run_id],
    )


def _confidence(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    if run.confidence is None or run.confidence >= cfg.confidence_min:
        w.low_confidence.clear()
        return None
    w.low_confidence.append(run.run_id)
    if len(w.low_confidence) < cfg.confidence_runs:
        return None
    evidence, w.low_confidence = w.low_confidence, []
    return Finding(
        "low_confidence",
        "confidence",
        run.confidence,
        None,
        cfg.confidence_min,
        len(evidence),
        evidence,
    )


def _retries(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    w.retries.append((run.run_id, run.retries > 0))
    hits = [rid for rid, retried in w.retries if retried]
    if len(hits) < cfg.retries_runs:
        return None
    window = len(w.retries)
    w.retries.clear()
    return Finding(
        "repeated_retries", "runs_with_retries", len(hits), None, cfg.retries_runs, window, hits
    )
