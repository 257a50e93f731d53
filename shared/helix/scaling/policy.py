"""Scaling policy, the metrics a decision is made on, and the decision itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ScalingMode(StrEnum):
    THRESHOLD = "threshold"  # step up above target, step down well below it
    PROPORTIONAL = "proportional"  # Kubernetes HPA: ceil(current * value / target)


@dataclass(frozen=True)
class ScalingPolicy:
    """How one agent scales. A target left at None is not a scaling signal."""

    min_instances: int = 1
    max_instances: int = 10
    target_cpu_percent: float | None = 70.0
    target_memory_percent: float | None = 80.0
    scale_up_cooldown: float = 60.0
    scale_down_cooldown: float = 300.0
    scale_up_step: int = 1
    scale_down_step: int = 1
    mode: ScalingMode = ScalingMode.THRESHOLD
    # Threshold mode scales down only when every signal is below target * (1 - margin).
    scale_down_margin: float = 0.2
    # LLM signals, per instance: backlog items, tokens per second; and p95 latency.
    target_queue_depth_per_instance: float | None = None
    target_tokens_per_second_per_instance: float | None = None
    target_p95_latency_ms: float | None = None
    # Proportional mode: ratios within 1 ± tolerance change nothing (HPA's default 0.1), and a
    # scale-down takes the highest recommendation of the last stabilization_window seconds.
    tolerance: float = 0.1
    stabilization_window: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_instances <= self.max_instances:
            raise ValueError("need 0 <= min_instances <= max_instances")
        if self.scale_up_step < 1 or self.scale_down_step < 1:
            raise ValueError("scaling steps must be at least 1")


@dataclass(frozen=True)
class ScalingMetrics:
    """Observed load of one agent, aggregated over its instances.

    ``cpu_percent`` and ``memory_percent`` are averages per instance (memory as a percent of the
    instance's limit); ``queue_depth`` and ``tokens_per_second`` are totals for the agent.
    """

    cpu_percent: float | None = None
    memory_percent: float | None = None
    queue_depth: float | None = None
    tokens_per_second: float | None = None
    p95_latency_ms: float | None = None


@dataclass(frozen=True)
class Signal:
    """One metric compared with its target: ``ratio`` > 1 means more instances are needed."""

    metric: str
    value: float
    target: float
    ratio: float


@dataclass(frozen=True)
class ScalingDecision:
    """What the scaler decided and why."""

    target_id: str
    current: int
    desired: int
    reason: str
    metric: str | None = None
    value: float | None = None
    target: float | None = None
    at: float = 0.0

    @property
    def direction(self) -> str:
        return (
            "up"
            if self.desired > self.current
            else "down"
            if self.desired < self.current
            else "none"
        )


def signals(policy: ScalingPolicy, metrics: ScalingMetrics, current: int) -> list[Signal]:
    """Every metric that has both a value and a target, as a ratio to its target."""
    per = max(current, 1)
    pairs = [
        ("cpu_percent", metrics.cpu_percent, policy.target_cpu_percent, 1),
        ("memory_percent", metrics.memory_percent, policy.target_memory_percent, 1),
        (
            "queue_depth_per_instance",
            metrics.queue_depth,
            policy.target_queue_depth_per_instance,
            per,
        ),
        (
            "tokens_per_second_per_instance",
            metrics.tokens_per_second,
            policy.target_tokens_per_second_per_instance,
            per,
        ),
        ("p95_latency_ms", metrics.p95_latency_ms, policy.target_p95_latency_ms, 1),
    ]
    return [
        Signal(name, value / divisor, target, value / divisor / target)
        for name, value, target, divisor in pairs
        if value is not None and target is not None and target > 0
    ]
