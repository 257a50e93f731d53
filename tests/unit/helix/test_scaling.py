"""Scaling decisions: threshold mode with per-direction cooldowns, and HPA's proportional mode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from helix import ManualClock, Scaler, ScalingMetrics, ScalingMode, ScalingPolicy

HOT = ScalingMetrics(cpu_percent=85.0, memory_percent=60.0)
COLD = ScalingMetrics(cpu_percent=10.0, memory_percent=10.0)


async def scaler_with(policy: ScalingPolicy) -> tuple[Scaler, ManualClock]:
    clock = ManualClock()
    scaler = Scaler(clock)
    await scaler.register_policy("a", policy)
    return scaler, clock


async def test_scale_up_waits_only_the_up_cooldown_even_when_memory_drives_it() -> None:
    scaler, clock = await scaler_with(ScalingPolicy(scale_up_cooldown=60, scale_down_cooldown=300))
    memory_hot = ScalingMetrics(cpu_percent=10.0, memory_percent=95.0)
    assert await scaler.evaluate_scaling("a", memory_hot, 2) == 3
    clock.advance(59)
    assert await scaler.evaluate_scaling("a", memory_hot, 3) == 3
    clock.advance(1)
    decision = await scaler.decide("a", memory_hot, 3)
    assert decision.desired == 4
    assert (decision.metric, decision.value, decision.target) == ("memory_percent", 95.0, 80.0)


async def test_scale_down_waits_its_own_cooldown() -> None:
    scaler, clock = await scaler_with(ScalingPolicy(scale_up_cooldown=60, scale_down_cooldown=300))
    assert await scaler.evaluate_scaling("a", COLD, 5) == 4
    clock.advance(299)
    held = await scaler.decide("a", COLD, 4)
    assert held.desired == 4 and "cooldown" in held.reason
    clock.advance(1)
    assert await scaler.evaluate_scaling("a", COLD, 4) == 3
    assert await scaler.evaluate_scaling("a", HOT, 3) == 4  # up is not held by the down cooldown


async def test_opposite_moves_never_freeze_scaling() -> None:
    scaler, clock = await scaler_with(ScalingPolicy(scale_up_cooldown=60, scale_down_cooldown=300))
    current = 3
    for metrics in [HOT, COLD, HOT, COLD, HOT, COLD]:
        clock.advance(301)
        desired = await scaler.evaluate_scaling("a", metrics, current)
        assert desired != current
        current = desired


async def test_threshold_mode_stays_in_band_and_within_bounds() -> None:
    scaler, _ = await scaler_with(ScalingPolicy(min_instances=1, max_instances=3))
    assert await scaler.evaluate_scaling("a", ScalingMetrics(cpu_percent=65.0), 2) == 2
    assert await scaler.evaluate_scaling("a", HOT, 3) == 3
    assert await scaler.evaluate_scaling("a", COLD, 1) == 1


async def test_llm_backlog_per_instance_drives_scale_up() -> None:
    policy = ScalingPolicy(
        target_cpu_percent=None, target_memory_percent=None, target_queue_depth_per_instance=10
    )
    scaler, _ = await scaler_with(policy)
    decision = await scaler.decide("a", ScalingMetrics(queue_depth=50), 2)
    assert decision.desired == 3
    assert (decision.metric, decision.value) == ("queue_depth_per_instance", 25.0)


HPA_BASE = ScalingPolicy(
    mode=ScalingMode.PROPORTIONAL,
    min_instances=1,
    max_instances=12,
    target_cpu_percent=60.0,
    target_memory_percent=None,
)
# current, metrics, policy overrides, expected: Kubernetes HPA's answers
HPA_CASES = [
    (2, ScalingMetrics(cpu_percent=90.0), {}, 3),  # ceil(2 * 90/60) = 3
    (3, ScalingMetrics(cpu_percent=63.0), {}, 3),  # ratio 1.05 within tolerance
    (3, ScalingMetrics(cpu_percent=67.0), {}, 4),  # ratio 1.117 outside tolerance: ceil(3.35)
    (4, ScalingMetrics(cpu_percent=20.0), {"stabilization_window": 0}, 2),  # ceil(4 * 1/3)
    (10, ScalingMetrics(cpu_percent=600.0), {}, 12),  # clamped to max
    (
        2,
        ScalingMetrics(cpu_percent=30.0, queue_depth=100),
        {"target_queue_depth_per_instance": 10},
        10,
    ),  # largest of the metrics wins: backlog 50/instance vs 10 → ceil(2*5)
    (2, ScalingMetrics(tokens_per_second=3000), {"target_tokens_per_second_per_instance": 500}, 6),
    (4, ScalingMetrics(p95_latency_ms=4000), {"target_p95_latency_ms": 2000}, 8),
]


@pytest.mark.parametrize(("current", "metrics", "overrides", "expected"), HPA_CASES)
async def test_hpa_table(
    current: int, metrics: ScalingMetrics, overrides: dict[str, Any], expected: int
) -> None:
    policy = replace(HPA_BASE, **overrides)
    scaler, _ = await scaler_with(policy)
    assert await scaler.evaluate_scaling("a", metrics, current) == expected


async def test_hpa_scale_down_takes_the_highest_recommendation_in_the_window() -> None:
    policy = ScalingPolicy(
        mode=ScalingMode.PROPORTIONAL,
        target_cpu_percent=50.0,
        target_memory_percent=None,
        stabilization_window=300,
        max_instances=20,
    )
    scaler, clock = await scaler_with(policy)
    assert await scaler.evaluate_scaling("a", ScalingMetrics(cpu_percent=80.0), 5) == 8
    clock.advance(100)
    held = await scaler.decide("a", ScalingMetrics(cpu_percent=10.0), 8)  # recommends 2
    assert held.desired == 8 and "stabilization" in held.reason
    clock.advance(150)
    assert await scaler.evaluate_scaling("a", ScalingMetrics(cpu_percent=25.0), 8) == 8
    clock.advance(51)  # the 8 is now older than the window; the 4 from t=250 is the highest
    assert await scaler.evaluate_scaling("a", ScalingMetrics(cpu_percent=10.0), 8) == 4
