"""The worker's obedience: desired state from Redis and commands from ``helm.control``.

Everything here is applied before the next run starts: a run in flight finishes, then the
worker waits while paused (unless the governor asked for recovery probes), honours the rate
limit as a token bucket, and caps batch size and retries. Commands are the fast path; the state
in Redis is the truth, re-read at start and periodically, so a missed command is corrected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from helm import contracts as c
from helm.state import Anomaly, Constraints, Control

Clock = Callable[[], float]


class TokenBucket:
    """``rate_per_min`` runs per minute with a burst of one: evenly spaced run starts."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.rate_per_s: float | None = None
        self.tokens = 1.0
        self.stamp = clock()

    def set_rate(self, per_min: float | None) -> None:
        self._refill()
        self.rate_per_s = None if per_min is None else per_min / 60.0

    def _refill(self) -> None:
        now = self.clock()
        if self.rate_per_s is not None:
            self.tokens = min(1.0, self.tokens + (now - self.stamp) * self.rate_per_s)
        else:
            self.tokens = 1.0
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until a run may start; 0 takes the token."""
        self._refill()
        if self.tokens >= 1.0 or self.rate_per_s is None:
            self.tokens -= 1.0 if self.rate_per_s is not None else 0.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class ControlState:
    """What this worker must obey right now."""

    def __init__(self, agent_id: str, clock: Clock = time.time) -> None:
        self.agent_id = agent_id
        self.clock = clock
        self.control = Control()
        self.anomaly: Anomaly | None = None
        self.bucket = TokenBucket()
        self.changed = asyncio.Event()

    def load(self, control: Control, anomaly: Anomaly | None) -> None:
        self.control, self.anomaly = control, anomaly
        self.bucket.set_rate(control.constraints.rate_limit_per_min)
        self.changed.set()

    def apply(self, cmd: c.ControlCommand) -> bool:
        """Apply a command meant for this agent; False when it is for another one."""
        if cmd.agent_id != self.agent_id:
            return False
        ctl = self.control
        if isinstance(cmd, c.PauseAgent):
            ctl = ctl.model_copy(update={"paused": True, "probe": False})
        elif isinstance(cmd, c.ResumeAgent):
            ctl = ctl.model_copy(update={"paused": False, "probe": cmd.probe})
        elif isinstance(cmd, c.ConstrainAgent):
            limits = Constraints(
                rate_limit_per_min=cmd.rate_limit_per_min,
                batch_size=cmd.batch_size,
                max_retries=cmd.max_retries,
            )
            ctl = ctl.model_copy(update={"constraints": limits})
        elif isinstance(cmd, c.InjectAnomaly):
            self.anomaly = Anomaly(
                until=cmd.ts + cmd.duration_s,
                batch_multiplier=cmd.batch_multiplier,
                malformed_ratio=cmd.malformed_ratio,
            )
        elif isinstance(cmd, c.ClearAnomaly):
            self.anomaly = None
        self.load(ctl.model_copy(update={"actor": cmd.actor, "reason": cmd.reason}), self.anomaly)
        return True

    @property
    def paused(self) -> bool:
        return self.control.paused

    def active_anomaly(self) -> Anomaly | None:
        a = self.anomaly
        return a if a is not None and a.active(self.clock()) else None

    def batch_size(self, default: int) -> int:
        anomaly = self.active_anomaly()
        size = default * anomaly.batch_multiplier if anomaly else default
        cap = self.control.constraints.batch_size
        return min(size, cap) if cap is not None else size

    def max_retries(self, default: int) -> int:
        cap = self.control.constraints.max_retries
        return min(default, cap) if cap is not None else default

    def malformed_ratio(self) -> float:
        anomaly = self.active_anomaly()
        return anomaly.malformed_ratio if anomaly else 0.0

    async def wait_runnable(self, stop: asyncio.Event) -> bool:
        """Wait until a run may start (not paused, rate limit allows); False if stopping."""
        while not stop.is_set():
            if self.paused:
                await self._wait_change(stop, None)
                continue
            delay = self.bucket.wait_time()
            if delay <= 0:
                return True
            await self._wait_change(stop, delay)
        return False

    async def _wait_change(self, stop: asyncio.Event, seconds: float | None) -> None:
        self.changed.clear()
        waits = [asyncio.ensure_future(self.changed.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
