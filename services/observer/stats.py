"""Windowed LLM metrics for one agent in fixed memory (about 1 KB, whatever the traffic).

Where ``helix.LLMResourceTracker`` keeps one sample per request for its whole window (hundreds
of KB for a busy agent), this keeps ten 30-second buckets of sums over the runs' own timestamps,
plus the latencies of the last 64 runs for percentiles. It reports the tracker's figures under the
tracker's names, so the dashboard reads either. Rates are over the window, or over the time the
agent has been seen when that is shorter. These are display figures, not checkpointed: a
restarted observer starts them afresh.
"""

from __future__ import annotations

from array import array
from typing import Any

from helix.tracking import percentile
from helm.contracts import RunCompleted

WINDOW_S = 300.0
BUCKETS = 10
BUCKET_S = WINDOW_S / BUCKETS
LATENCIES = 64
# Sums kept per bucket, in this order.
REQ, ERR, IN, OUT, COST, TTFT, TTFT_N = range(7)
FIELDS = 7


class AgentStats:
    __slots__ = ("_first", "_last", "_lat", "_lat_next", "_newest", "_sums")

    def __init__(self) -> None:
        self._sums = array("d", bytes(8 * BUCKETS * FIELDS))
        self._lat = array("f")
        self._lat_next = 0
        self._newest = -1  # index of the newest bucket (runs' ts // BUCKET_S)
        self._first = self._last = 0.0

    def record(self, run: RunCompleted) -> None:
        ts = run.ts
        bucket = int(ts // BUCKET_S)
        if self._newest < 0:
            self._newest, self._first = bucket, ts
        if bucket > self._newest:
            self._advance(bucket)
        if ts > self._last:
            self._last = ts
        lat, i = self._lat, self._lat_next
        if len(lat) < LATENCIES:
            lat.append(run.latency_ms)
        else:
            lat[i] = run.latency_ms
        self._lat_next = (i + 1) % LATENCIES
        if bucket <= self._newest - BUCKETS:
            return  # older than the window
        at, s = (bucket % BUCKETS) * FIELDS, self._sums
        s[at] += 1
        if run.outcome != "ok":
            s[at + ERR] += 1
        s[at + IN] += run.input_tokens
        s[at + OUT] += run.output_tokens
        s[at + COST] += run.cost
        if run.ttft_ms is not None:
            s[at + TTFT] += run.ttft_ms
            s[at + TTFT_N] += 1

    def _advance(self, bucket: int) -> None:
        for b in range(max(self._newest + 1, bucket - BUCKETS + 1), bucket + 1):
            at = (b % BUCKETS) * FIELDS
            self._sums[at : at + FIELDS] = array("d", bytes(8 * FIELDS))
        self._newest = bucket

    def metrics(self) -> dict[str, Any]:
        """The tracker's window figures (see ``helix.tracking.WindowMetrics``)."""
        t = [sum(self._sums[f::FIELDS]) for f in range(FIELDS)]
        n = t[REQ]
        span = max(1.0, min(WINDOW_S, self._last - self._first))
        lat = sorted(self._lat)
        return {
            "window_seconds": WINDOW_S,
            "requests": int(n),
            "errors": int(t[ERR]),
            "input_tokens_per_second": t[IN] / span,
            "output_tokens_per_second": t[OUT] / span,
            "tokens_per_second": (t[IN] + t[OUT]) / span,
            "requests_per_minute": n * 60.0 / span,
            "latency_p50_ms": percentile(lat, 0.50),
            "latency_p95_ms": percentile(lat, 0.95),
            "latency_p99_ms": percentile(lat, 0.99),
            "ttft_mean_ms": t[TTFT] / t[TTFT_N] if t[TTFT_N] else 0.0,
            "cost_per_request": t[COST] / n if n else 0.0,
            "cost_per_hour": t[COST] * 3600.0 / span,
            "error_rate": t[ERR] / n if n else 0.0,
        }
