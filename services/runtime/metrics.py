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
        self.desired = Gauge(
            "helm_runtime_desired_instances",
            "Worker processes the runtime keeps for each agent",
            ["agent"],
            registry=registry,
        )
        self.ready = Gauge(
            "helm_runtime_ready_instances",
            "Worker processes whose heartbeat says they take work",
            ["agent"],
            registry=registry,
        )
        self.backlog = Gauge(
            "helm_runtime_task_backlog",
            "Tasks published to an agent and not yet done by its workers",
            ["agent"],
            registry=registry,
        )
        self.scaled = Counter(
            "helm_runtime_scaling_decisions_total",
            "Instance count changes made by the autoscaler",
            ["agent", "direction"],
            registry=registry,
        )
        self.restarts = Counter(
            "helm_runtime_restarts_total",
            "Worker processes restarted, by why",
            ["agent", "kind"],
            registry=registry,
        )
