"""The observer's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ObserverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "helm_observer_runs_total", "Runs observed", ["agent", "outcome"], registry=registry
        )
        self.drifts = Counter(
            "helm_observer_drift_events_total",
            "Drift detected",
            ["agent", "rule"],
            registry=registry,
        )
        self.fenced = Counter(
            "helm_observer_fenced_batches_total",
            "Batches dropped because their partition had moved to another observer",
            registry=registry,
        )
        self.agents = Gauge(
            "helm_observer_agents_tracked", "Agents with a baseline in memory", registry=registry
        )
        self.forgotten = Counter(
            "helm_observer_agents_forgotten_total",
            "Idle agents dropped from memory (their baselines stay in their checkpoints)",
            registry=registry,
        )
