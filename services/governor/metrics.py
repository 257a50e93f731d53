"""The governors' metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class GovernorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.actions = Counter(
            "helm_governor_actions_total",
            "Commands the governors sent",
            ["agent", "action"],
            registry=registry,
        )
        self.transitions = Counter(
            "helm_governor_transitions_total",
            "Agent state transitions",
            ["agent", "state"],
            registry=registry,
        )
