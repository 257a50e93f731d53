"""The budget store interface and the in-memory implementation.

A store keeps budget limits and per-period counters. ``reserve`` checks every candidate budget
that has a limit and, only if all of them have room, adds the amount to all of them: one atomic
step (a Lua script in Redis; a section with no ``await`` in memory). ``settle`` applies the
difference between actual and reserved tokens exactly once per reservation id. Both report the
alert thresholds newly crossed; each fires once per budget, threshold and period.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from helix.budgets.models import LEVEL_CODES, THRESHOLDS, Refusal
from helix.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class Candidate:
    budget_id: str
    counter_key: str  # budget id + ":" + period key
    ttl: int


@dataclass(frozen=True)
class Applied:
    budget_id: str
    counter_key: str
    limit: int
    used: int
    fired: tuple[int, ...] = field(default=())  # alert level codes newly crossed


@dataclass(frozen=True)
class ReserveOutcome:
    granted: bool
    applied: tuple[Applied, ...] = ()
    refused: Refusal | None = None


class BudgetStore(Protocol):
    async def set_limit(self, budget_id: str, amount: int) -> None: ...
    async def delete_limit(self, budget_id: str) -> None: ...
    async def limits(self) -> dict[str, int]: ...
    async def used(self, counter_keys: list[str]) -> list[int]: ...
    async def reserve(
        self, candidates: list[Candidate], amount: int, force: bool
    ) -> ReserveOutcome: ...
    async def settle(
        self, reservation_id: str, counters: list[tuple[str, str, int]], delta: int, ttl: int
    ) -> tuple[Applied, ...]: ...
    async def close(self) -> None: ...


def crossed(used: int, limit: int) -> list[int]:
    """Codes of every alert threshold that ``used`` has reached."""
    utilization = used / limit if limit > 0 else 1.0
    return sorted(LEVEL_CODES[level] for level, t in THRESHOLDS if utilization >= t)


class MemoryBudgetStore:
    """Budgets in this process only. Expired counters are dropped as time passes."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, max_settled: int = 100_000) -> None:
        self._clock = clock
        self._limits: dict[str, int] = {}
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (used, expires at)
        self._fired: dict[str, float] = {}  # alert marker -> expires at
        self._settled: OrderedDict[str, None] = OrderedDict()
        self._max_settled = max_settled

    async def set_limit(self, budget_id: str, amount: int) -> None:
        self._limits[budget_id] = amount

    async def delete_limit(self, budget_id: str) -> None:
        self._limits.pop(budget_id, None)

    async def limits(self) -> dict[str, int]:
        return dict(self._limits)

    async def used(self, counter_keys: list[str]) -> list[int]:
        return [self._get(k) for k in counter_keys]

    def _get(self, key: str) -> int:
        used, expires = self._counters.get(key, (0, 0.0))
        return used if expires > self._clock.time() else 0

    def _add(self, budget_id: str, key: str, amount: int, ttl: int | None) -> Applied:
        now = self._clock.time()
        used, expires = self._counters.get(key, (0, 0.0))
        used, expires = (used, expires) if expires > now else (0, now + (ttl or 3600))
        self._counters[key] = (used + amount, expires)
        limit = self._limits.get(budget_id, 0)
        fired = tuple(c for c in crossed(used + amount, limit) if self._fire(key, c, expires))
        return Applied(budget_id, key, limit, used + amount, fired)

    def _fire(self, key: str, code: int, expires: float) -> bool:
        marker = f"{key}:alert:{code}"
        if self._fired.get(marker, 0.0) > self._clock.time():
            return False
        self._fired[marker] = expires
        return True

    async def reserve(
        self, candidates: list[Candidate], amount: int, force: bool
    ) -> ReserveOutcome:
        self._expire()
        active = [c for c in candidates if c.budget_id in self._limits]
        for c in active:
            used, limit = self._get(c.counter_key), self._limits[c.budget_id]
            if not force and used + amount > limit:
                return ReserveOutcome(False, (), Refusal(c.budget_id, used, limit, amount))
        return ReserveOutcome(
            True, tuple(self._add(c.budget_id, c.counter_key, amount, c.ttl) for c in active)
        )

    async def settle(
        self, reservation_id: str, counters: list[tuple[str, str, int]], delta: int, ttl: int
    ) -> tuple[Applied, ...]:
        if reservation_id in self._settled:
            return ()
        self._settled[reservation_id] = None
        if len(self._settled) > self._max_settled:
            self._settled.popitem(last=False)
        return tuple(self._add(bid, key, delta, ttl) for bid, key, _ in counters)

    def _expire(self) -> None:
        now = self._clock.time()
        if len(self._counters) > 1024:  # amortised: only sweep when there is something to gain
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            self._fired = {k: v for k, v in self._fired.items() if v > now}

    async def close(self) -> None:
        return None
