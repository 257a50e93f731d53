"""Per-agent LLM metrics over a sliding time window, and totals since start.

``LLMResourceTracker`` keeps one small sample per request in a deque bounded both by age
(``window_size`` seconds) and by count (``max_samples``), so memory stays bounded however busy the
agent is. Rates are taken over the window, or over the time since the tracker started when that is
shorter, so a fresh tracker does not under-report. An empty window gives zeros, never an error.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import TypedDict

from helix.clock import SYSTEM_CLOCK, Clock


class WindowMetrics(TypedDict):
    agent_id: str
    model: str
    window_seconds: float
    requests: int
    errors: int
    input_tokens_per_second: float
    output_tokens_per_second: float
    tokens_per_second: float
    requests_per_minute: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    ttft_mean_ms: float
    wait_time_mean_ms: float
    cost_per_request: float
    cost_per_hour: float
    error_rate: float


class TotalStatistics(TypedDict):
    agent_id: str
    model: str
    uptime_seconds: float
    total_requests: int
    total_errors: int
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    total_cost: float
    mean_latency_ms: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    input_tokens: int
    output_tokens: int
    latency_ms: float
    ttft_ms: float
    cost: float
    wait_time_ms: float
    error: bool


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = (len(sorted_values) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class LLMResourceTracker:
    """Windowed LLM metrics for one agent and model."""

    def __init__(
        self,
        agent_id: str,
        model: str,
        window_size: float = 300,
        *,
        max_samples: int = 100_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if window_size <= 0:
            raise ValueError("window_size must be positive")
        self.agent_id, self.model, self.window_size = agent_id, model, float(window_size)
        self._clock = clock
        self._started = clock.monotonic()
        self._samples: deque[_Sample] = deque(maxlen=max_samples)
        self._totals = {"requests": 0, "errors": 0, "input": 0, "output": 0}
        self._total_cost = 0.0
        self._total_latency = 0.0
        self._lock = asyncio.Lock()

    async def record_request(
        self,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        ttft_ms: float = 0.0,
        cost: float = 0.0,
        wait_time_ms: float = 0.0,
        error: str | None = None,
    ) -> None:
        """Record one LLM request (``error`` names the failure kind, if it failed)."""
        sample = _Sample(
            self._clock.monotonic(),
            input_tokens,
            output_tokens,
            latency_ms,
            ttft_ms,
            cost,
            wait_time_ms,
            error is not None,
        )
        async with self._lock:
            self._samples.append(sample)
            self._prune(sample.at)
            self._totals["requests"] += 1
            self._totals["errors"] += int(sample.error)
            self._totals["input"] += input_tokens
            self._totals["output"] += output_tokens
            self._total_cost += cost
            self._total_latency += latency_ms

    def _prune(self, now: float) -> None:
        horizon = now - self.window_size
        while self._samples and self._samples[0].at < horizon:
            self._samples.popleft()

    async def get_metrics(self) -> WindowMetrics:
        """Metrics over the last ``window_size`` seconds."""
        async with self._lock:
            now = self._clock.monotonic()
            self._prune(now)
            window = list(self._samples)
        span = max(1.0, min(self.window_size, now - self._started))
        latencies = sorted(s.latency_ms for s in window)
        n, errors = len(window), sum(s.error for s in window)
        tokens_in = sum(s.input_tokens for s in window)
        tokens_out = sum(s.output_tokens for s in window)
        cost = sum(s.cost for s in window)
        return WindowMetrics(
            agent_id=self.agent_id,
            model=self.model,
            window_seconds=self.window_size,
            requests=n,
            errors=errors,
            input_tokens_per_second=tokens_in / span,
            output_tokens_per_second=tokens_out / span,
            tokens_per_second=(tokens_in + tokens_out) / span,
            requests_per_minute=n * 60.0 / span,
            latency_p50_ms=percentile(latencies, 0.50),
            latency_p95_ms=percentile(latencies, 0.95),
            latency_p99_ms=percentile(latencies, 0.99),
            ttft_mean_ms=_mean([s.ttft_ms for s in window]),
            wait_time_mean_ms=_mean([s.wait_time_ms for s in window]),
            cost_per_request=cost / n if n else 0.0,
            cost_per_hour=cost * 3600.0 / span,
            error_rate=errors / n if n else 0.0,
        )

    async def get_statistics(self) -> TotalStatistics:
        """Totals since the tracker started."""
        async with self._lock:
            t, cost, latency = dict(self._totals), self._total_cost, self._total_latency
        n = t["requests"]
        return TotalStatistics(
            agent_id=self.agent_id,
            model=self.model,
            uptime_seconds=self._clock.monotonic() - self._started,
            total_requests=n,
            total_errors=t["errors"],
            total_input_tokens=t["input"],
            total_output_tokens=t["output"],
            total_tokens=t["input"] + t["output"],
            total_cost=cost,
            mean_latency_ms=latency / n if n else 0.0,
            error_rate=t["errors"] / n if n else 0.0,
        )
