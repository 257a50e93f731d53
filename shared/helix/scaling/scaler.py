"""The scaler: from an agent's metrics to a desired instance count, with its reasons.

Threshold mode (the original's): above target on any signal → ``+scale_up_step``; every signal
below ``target * (1 - scale_down_margin)`` → ``-scale_down_step``. A scale-up waits
``scale_up_cooldown`` after the previous scale-up; a scale-down waits ``scale_down_cooldown``
after the previous move of either direction (so it never undoes a fresh scale-up). Whichever metric
drove it, a direction waits only its own cooldown, and no sequence of moves blocks later ones.

Proportional mode is Kubernetes' HPA: per signal ``ceil(current * value / target)`` unless the
ratio is within ``1 ± tolerance``; the largest recommendation wins; a scale-down takes the highest
recommendation of the last ``stabilization_window`` seconds; scale-ups are immediate.

Both clamp to [min_instances, max_instances]. ``evaluate_scaling`` returns the int;
``decide`` returns the ``ScalingDecision``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from helix.clock import SYSTEM_CLOCK, Clock
from helix.scaling.policy import (
    ScalingDecision,
    ScalingMetrics,
    ScalingMode,
    ScalingPolicy,
    Signal,
    signals,
)


@dataclass
class _State:
    policy: ScalingPolicy
    last_up: float | None = None
    last_down: float | None = None
    history: deque[tuple[float, int]] = field(default_factory=deque)
    decisions: deque[ScalingDecision] = field(default_factory=lambda: deque(maxlen=100))


class Scaler:
    """Desired instance counts for registered targets."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._targets: dict[str, _State] = {}

    async def register_policy(self, target_id: str, policy: ScalingPolicy) -> None:
        self._targets[target_id] = _State(policy)

    async def unregister_policy(self, target_id: str) -> None:
        self._targets.pop(target_id, None)

    def get_policy(self, target_id: str) -> ScalingPolicy:
        return self._targets[target_id].policy

    async def evaluate_scaling(
        self, target_id: str, metrics: ScalingMetrics, current_instances: int
    ) -> int:
        """The desired instance count (``current_instances`` when nothing should change)."""
        return (await self.decide(target_id, metrics, current_instances)).desired

    async def decide(
        self, target_id: str, metrics: ScalingMetrics, current_instances: int
    ) -> ScalingDecision:
        """The decision with the metric, value and reason behind it."""
        state = self._targets[target_id]  # KeyError: no policy for this target
        now = self._clock.monotonic()
        if state.policy.mode is ScalingMode.PROPORTIONAL:
            decision = self._proportional(state, target_id, metrics, current_instances, now)
        else:
            decision = self._threshold(state, target_id, metrics, current_instances, now)
        if decision.direction == "up":
            state.last_up = now
        elif decision.direction == "down":
            state.last_down = now
        state.decisions.append(decision)
        return decision

    def history(self, target_id: str) -> list[ScalingDecision]:
        """The last decisions for ``target_id``, oldest first."""
        return list(self._targets[target_id].decisions)

    def _decision(
        self, target_id: str, current: int, desired: int, reason: str, sig: Signal | None
    ) -> ScalingDecision:
        at = self._clock.time()
        if sig is None:
            return ScalingDecision(target_id, current, desired, reason, at=at)
        return ScalingDecision(
            target_id, current, desired, reason, sig.metric, sig.value, sig.target, at
        )

    def _threshold(
        self, st: _State, tid: str, m: ScalingMetrics, current: int, now: float
    ) -> ScalingDecision:
        p = st.policy
        if current < p.min_instances or current > p.max_instances:
            bound = min(max(current, p.min_instances), p.max_instances)
            return self._decision(tid, current, bound, "outside [min, max]", None)
        sigs = signals(p, m, current)
        if not sigs:
            return self._decision(tid, current, current, "no metric with a target", None)
        top = max(sigs, key=lambda s: s.ratio)
        if top.ratio > 1.0:
            wait = _remaining(st.last_up, p.scale_up_cooldown, now)
            desired = min(current + p.scale_up_step, p.max_instances)
            reason = f"{top.metric} {top.value:g} above target {top.target:g}"
        elif top.ratio <= 1.0 - p.scale_down_margin:
            last_move = max((t for t in (st.last_up, st.last_down) if t is not None), default=None)
            wait = _remaining(last_move, p.scale_down_cooldown, now)
            desired = max(current - p.scale_down_step, p.min_instances)
            reason = f"every metric well below target (highest: {top.metric} {top.value:g})"
        else:
            return self._decision(tid, current, current, "within target band", top)
        if desired == current:
            return self._decision(tid, current, current, reason + "; at the bound", top)
        if wait > 0:
            return self._decision(tid, current, current, reason + f"; cooldown {wait:g}s left", top)
        return self._decision(tid, current, desired, reason, top)

    def _proportional(
        self, st: _State, tid: str, m: ScalingMetrics, current: int, now: float
    ) -> ScalingDecision:
        p = st.policy
        recs = [(_hpa(current, s, p.tolerance), s) for s in signals(p, m, current)]
        rec, sig = max(recs, key=lambda r: r[0], default=(current, None))
        rec = min(max(rec, p.min_instances), p.max_instances)
        while st.history and st.history[0][0] < now - p.stabilization_window:
            st.history.popleft()
        st.history.append((now, rec))
        stabilized = max(r for _, r in st.history)
        desired = min(max(current, rec), stabilized)
        desired = min(max(desired, p.min_instances), p.max_instances)
        reason = (
            f"{sig.metric} {sig.value:g} vs target {sig.target:g} recommends {rec}"
            if sig
            else "no metric with a target"
        )
        if desired > rec:
            reason += f"; scale-down held at {desired} by the stabilization window"
        return self._decision(tid, current, desired, reason, sig)


def _hpa(current: int, sig: Signal, tolerance: float) -> int:
    if abs(sig.ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * sig.ratio)


def _remaining(last: float | None, cooldown: float, now: float) -> float:
    return 0.0 if last is None else max(0.0, last + cooldown - now)
