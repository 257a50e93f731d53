"""The worker's metrics (GenAI semantic conventions for token usage, duration, TTFT)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "helm_worker_runs_total", "Agent runs", ["agent", "outcome"], registry=registry
        )
        self.tokens = Counter(
            "helm_worker_tokens_total", "LLM tokens used", ["agent", "direction"], registry=registry
        )
        self.cost = Counter(
            "helm_worker_cost_usd_total", "LLM cost in USD", ["agent"], registry=registry
        )
        self.retries = Counter(
            "helm_worker_retries_total", "LLM retries", ["agent"], registry=registry
        )
        self.duration = Histogram(
            "helm_worker_run_duration_seconds",
            "Run wall time",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "helm_worker_time_to_first_token_seconds",
            "Time to first token of a run's first call",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.telemetry_failures = Counter(
            "helm_worker_telemetry_failures_total",
            "Runs whose telemetry the broker did not take",
            ["agent"],
            registry=registry,
        )
        self.paused = Gauge(
            "helm_worker_paused", "1 while the agent is paused", ["agent"], registry=registry
        )
        self.in_flight = Gauge(
            "helm_worker_runs_in_flight", "Runs in progress", ["agent"], registry=registry
        )
