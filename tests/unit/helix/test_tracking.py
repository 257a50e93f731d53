"""LLMResourceTracker: windowed metrics on a manual clock, totals since start."""

from __future__ import annotations

import pytest

from helix import LLMResourceTracker, ManualClock


async def test_empty_window_gives_zeros() -> None:
    tracker = LLMResourceTracker("a", "gpt-4", window_size=60, clock=ManualClock())
    metrics = await tracker.get_metrics()
    assert metrics["requests"] == 0 and metrics["latency_p95_ms"] == 0.0
    assert metrics["error_rate"] == 0.0 and metrics["tokens_per_second"] == 0.0


async def test_window_rates_percentiles_and_expiry() -> None:
    clock = ManualClock()
    tracker = LLMResourceTracker("a", "gpt-4", window_size=60, clock=clock)
    clock.advance(60)
    for i in range(1, 101):
        await tracker.record_request(
            input_tokens=10,
            output_tokens=20,
            latency_ms=float(i),
            ttft_ms=5.0,
            cost=0.01,
            wait_time_ms=2.0,
            error="timeout" if i % 10 == 0 else None,
        )
    m = await tracker.get_metrics()
    assert m["requests"] == 100
    assert m["input_tokens_per_second"] == pytest.approx(1000 / 60)
    assert m["output_tokens_per_second"] == pytest.approx(2000 / 60)
    assert m["requests_per_minute"] == pytest.approx(100)
    assert m["latency_p50_ms"] == pytest.approx(50.5)
    assert m["latency_p95_ms"] == pytest.approx(95.05)
    assert m["cost_per_request"] == pytest.approx(0.01)
    assert m["cost_per_hour"] == pytest.approx(1.0 * 60)
    assert m["error_rate"] == pytest.approx(0.1)
    assert m["ttft_mean_ms"] == 5.0 and m["wait_time_mean_ms"] == 2.0
    clock.advance(61)
    assert (await tracker.get_metrics())["requests"] == 0
    stats = await tracker.get_statistics()
    assert stats["total_requests"] == 100 and stats["total_tokens"] == 3000
    assert stats["total_errors"] == 10


async def test_memory_is_bounded() -> None:
    tracker = LLMResourceTracker(
        "a", "gpt-4", window_size=3600, max_samples=50, clock=ManualClock()
    )
    for _ in range(500):
        await tracker.record_request(1, 1, 1.0)
    assert (await tracker.get_metrics())["requests"] == 50
    assert (await tracker.get_statistics())["total_requests"] == 500
