"""Metric helpers shared by every service: the bus's own metrics and the exposition.

Each service declares its metrics in its own ``metrics.py`` against an injected
``CollectorRegistry``; names follow ``helm_<subsystem>_<what>_<unit>``, labels stay bounded
(topic, agent, outcome: never a run id).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BusMetrics:
    """Counters of what the Kafka bus did; ``registry=None`` keeps them unregistered."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.published = Counter(
            "helm_bus_published_messages_total", "Messages published", ["topic"], registry=registry
        )
        self.consumed = Counter(
            "helm_bus_consumed_messages_total", "Messages consumed", ["topic"], registry=registry
        )
        self.deadlettered = Counter(
            "helm_bus_deadlettered_messages_total",
            "Messages sent to the dead-letter topic because they could not be used",
            ["topic"],
            registry=registry,
        )
        self.handler_errors = Counter(
            "helm_bus_handler_errors_total",
            "Handler failures (each retried)",
            ["topic"],
            registry=registry,
        )
        self.topics_recreated = Counter(
            "helm_bus_topics_recreated_total",
            "Topics recreated after the broker lost them",
            registry=registry,
        )
        self.lag = Gauge(
            "helm_bus_consumer_lag_messages",
            "Messages behind the end of the topic",
            ["group"],
            registry=registry,
        )


def new_registry() -> CollectorRegistry:
    """A fresh registry per service instance, so tests can build several side by side."""
    return CollectorRegistry(auto_describe=True)
