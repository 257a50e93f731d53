"""What the dashboard shows of an agent: its windowed figures, baselines and last run."""

from __future__ import annotations

from typing import Any

from helm import contracts as c
from services.observer.stats import AgentStats
from services.observer.window import AgentWindow


def figures(stats: AgentStats, w: AgentWindow, n: int, last: c.RunCompleted) -> dict[str, Any]:
    """The agent's metrics hash: windowed LLM figures, counters, the medians of its last ``n``
    healthy runs, and its last run."""
    return {
        **stats.metrics(),
        "runs": w.runs,
        "drifts": w.drifts,
        "failed": w.failed,
        "runs_lost": w.lost,
        "baseline_tokens": w.median("tokens", n),
        "baseline_latency_ms": w.median("latency", n),
        "baseline_cost": w.median("cost", n),
        "baseline_confidence": w.median("confidence", n),
        "baseline_error_rate": w.error_base,
        "tokens_per_run": last.total_tokens,
        "confidence": last.confidence,
        "retries": last.retries,
        "batch_size": last.batch_size,
        "provider": last.provider,
        "model": last.model,
        "last_run_ts": last.ts,
        "last_outcome": last.outcome,
    }


def point(run: c.RunCompleted) -> dict[str, Any]:
    """One chart point."""
    return {
        "ts": run.ts,
        "tokens": run.total_tokens,
        "confidence": run.confidence,
        "latency_ms": round(run.latency_ms, 1),
        "outcome": run.outcome,
        "probe": run.probe,
    }
