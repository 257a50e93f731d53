"""What the observer remembers of one agent: compact, bounded and checkpointable.

- Rolling baselines of the last N healthy runs for tokens, latency, cost and confidence, each a
  flat array of doubles (N = 20 costs about 220 bytes, against about 1 KB as a deque of floats).
- Rule windows as bitmasks (newest run in bit 0) with only the run ids that evidence needs.
- Counters: runs seen, drifts found, failed runs.

``to_json`` and ``from_json`` round-trip exactly (baselines travel as the base64 of their
doubles: bit for bit, and ten times faster to write than decimal floats), so an observer restarted
from a checkpoint holds the very baselines it had when it wrote it. A window whose size changed in
the configuration since the checkpoint starts afresh.
"""

from __future__ import annotations

import base64
import json
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any

from helm.contracts import RunCompleted

BASELINES = ("tokens", "latency", "cost", "confidence")
MAX_ERROR_IDS = 10
MAX_INSTANCES = 8  # instances whose run numbers an agent's window remembers  # evidence of an error-rate drift: the newest failed runs, at most this many


def _ring() -> array[float]:
    return array("d")


@dataclass(slots=True)
class BitWindow:
    """The last ``size`` runs as bits (newest in bit 0), with the run ids of the set bits.

    ``keep`` bounds the ids held: only the newest ``keep`` set bits keep theirs.
    """

    size: int
    keep: int
    bits: int = 0
    seen: int = 0
    ids: list[str] = field(default_factory=list)

    def push(self, run_id: str, hit: bool) -> bool | None:
        """Add a run; return the bit that fell out of the window (None while it fills)."""
        dropped = None
        if self.size == 0:
            return None
        if self.seen == self.size:
            dropped = bool(self.bits >> (self.size - 1) & 1)
            if dropped and self.bits.bit_count() <= len(self.ids):
                self.ids.pop(0)
        else:
            self.seen += 1
        self.bits = ((self.bits << 1) | hit) & ((1 << self.size) - 1)
        if hit:
            self.ids.append(run_id)
            if len(self.ids) > self.keep:
                self.ids.pop(0)
        return dropped

    def count(self, last: int) -> int:
        return (self.bits & ((1 << last) - 1)).bit_count()

    def clear(self) -> None:
        self.bits, self.seen, self.ids = 0, 0, []

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "bits": self.bits, "seen": self.seen, "ids": self.ids}

    def load(self, data: dict[str, Any] | None) -> None:
        if data and int(data.get("size", 0)) == self.size:
            self.bits, self.seen = int(data["bits"]), int(data["seen"])
            self.ids = [str(x) for x in data["ids"]][-self.keep :]


@dataclass(slots=True)
class AgentWindow:
    """One agent's baselines, rule windows and counters. Build with ``new`` or ``from_json``."""

    capacity: int
    retries: BitWindow
    errors: BitWindow
    tokens: array[float] = field(default_factory=_ring)
    latency: array[float] = field(default_factory=_ring)
    cost: array[float] = field(default_factory=_ring)
    confidence: array[float] = field(default_factory=_ring)
    low_confidence: list[str] = field(default_factory=list)
    error_base: float = 0.0
    runs: int = 0
    drifts: int = 0
    failed: int = 0
    lost: int = 0
    seqs: dict[str, int] = field(default_factory=dict)

    def account(self, run: RunCompleted) -> None:
        """Run-id accounting: a jump in an instance's run numbers is runs that never arrived.

        A run number at or below the last one seen (a replay after a producer retry, or a new
        process reusing an instance id) is not a loss. At most ``MAX_INSTANCES`` instances are
        remembered per agent, the most recently seen.
        """
        if run.seq is None or not run.instance_id:
            return
        last = self.seqs.pop(run.instance_id, None)
        if last is not None and run.seq > last + 1:
            self.lost += run.seq - last - 1
        self.seqs[run.instance_id] = run.seq if last is None or run.seq == 1 else max(run.seq, last)
        while len(self.seqs) > MAX_INSTANCES:
            del self.seqs[next(iter(self.seqs))]

    @classmethod
    def new(cls, capacity: int, retries_window: int, error_window: int) -> AgentWindow:
        return cls(capacity, BitWindow(retries_window, retries_window), BitWindow(error_window, 10))

    def ring(self, name: str) -> array[float]:
        ring: array[float] = getattr(self, name)
        return ring

    def learn(self, run: RunCompleted) -> None:
        """Add a healthy run to every baseline (oldest out once full)."""
        tokens, latency, cost = self.tokens, self.latency, self.cost
        tokens.append(run.input_tokens + run.output_tokens)
        latency.append(run.latency_ms)
        cost.append(run.cost)
        if len(tokens) > self.capacity:
            del tokens[0], latency[0], cost[0]
        if run.confidence is not None:
            self.confidence.append(run.confidence)
            if len(self.confidence) > self.capacity:
                del self.confidence[0]

    def lowest(self, name: str, last: int) -> float:
        """The smallest of the newest ``last`` values of a (non-empty) baseline."""
        ring = self.ring(name)
        return min(ring if len(ring) <= last else ring[-last:])

    def highest(self, name: str, last: int) -> float:
        ring = self.ring(name)
        return max(ring if len(ring) <= last else ring[-last:])

    def median(self, name: str = "tokens", last: int | None = None) -> float | None:
        """Median of the newest ``last`` values of a baseline (all when None); None if empty."""
        ring = self.ring(name)
        n = min(len(ring), last or len(ring))
        if not n:
            return None
        values = sorted(ring[-n:])
        mid = n // 2
        return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 2,
            **{name: _b64(self.ring(name)) for name in BASELINES},
            "low_confidence": self.low_confidence,
            "retries": self.retries.to_json(),
            "errors": self.errors.to_json(),
            "error_base": self.error_base,
            "runs": self.runs,
            "drifts": self.drifts,
            "failed": self.failed,
            "lost": self.lost,
            "seqs": self.seqs,
        }

    def dumps(self) -> str:
        """``to_json`` as JSON text, built directly: a flush writes thousands of these."""
        r, e = self.retries, self.errors
        return (
            f'{{"v":2,"tokens":"{_b64(self.tokens)}","latency":"{_b64(self.latency)}",'
            f'"cost":"{_b64(self.cost)}","confidence":"{_b64(self.confidence)}",'
            f'"low_confidence":{_ids(self.low_confidence)},'
            f'"retries":{{"size":{r.size},"bits":{r.bits},"seen":{r.seen},"ids":{_ids(r.ids)}}},'
            f'"errors":{{"size":{e.size},"bits":{e.bits},"seen":{e.seen},"ids":{_ids(e.ids)}}},'
            f'"error_base":{self.error_base!r},"runs":{self.runs},"drifts":{self.drifts},'
            f'"failed":{self.failed},"lost":{self.lost},"seqs":{json.dumps(self.seqs)}}}'
        )

    @classmethod
    def from_json(
        cls, data: dict[str, Any], capacity: int, retries_window: int, error_window: int
    ) -> AgentWindow:
        """Rebuild from ``to_json`` (or from the first checkpoint format, tokens only)."""
        w = cls.new(capacity, retries_window, error_window)
        for name in BASELINES:
            _load(w.ring(name), data.get(name), capacity)
        w.low_confidence = [str(x) for x in data.get("low_confidence", [])]
        retries = data.get("retries")
        if isinstance(retries, list):  # first format: [[run id, retried], ...]
            for run_id, hit in retries[-retries_window:]:
                w.retries.push(str(run_id), bool(hit))
        else:
            w.retries.load(retries)
        w.errors.load(data.get("errors"))
        w.error_base = float(data.get("error_base", 0.0))
        w.runs, w.drifts = int(data.get("runs", 0)), int(data.get("drifts", 0))
        w.failed = int(data.get("failed", 0))
        w.lost = int(data.get("lost", 0))
        w.seqs = {str(k): int(v) for k, v in (data.get("seqs") or {}).items()}
        return w


def _b64(ring: array[float]) -> str:
    if sys.byteorder == "big":  # checkpoints hold little-endian doubles on every machine
        ring = array("d", ring)
        ring.byteswap()
    return base64.b64encode(ring.tobytes()).decode()


def _load(ring: array[float], data: str | list[float] | None, capacity: int) -> None:
    """Fill a ring from ``_b64`` text or, in the first checkpoint format, a list of numbers."""
    if isinstance(data, str):
        loaded = array("d", base64.b64decode(data))
        if sys.byteorder == "big":
            loaded.byteswap()
        ring.extend(loaded)
    elif data:
        ring.extend(float(x) for x in data)
    del ring[: max(0, len(ring) - capacity)]


def _ids(ids: list[str]) -> str:
    return json.dumps(ids) if ids else "[]"
