"""The runtime's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.instances = Gauge(
            "helm_runtime_instances",
            "Live instances (heartbeating) per agent",
            ["agent"],
            registry=registry,
        )
        self.dead = Counter(
            "helm_runtime_dead_instances_total",
            "Instances marked dead",
            ["agent"],
            registry=registry,
        )
