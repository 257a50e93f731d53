"""Token budgets per organisation, service and agent, enforced by reserve and settle.

A caller reserves its estimated tokens before an LLM call and settles the real count after.
``reserve`` checks every budget that applies to the caller (its organisation, service and agent,
each for every period that has a limit) and holds the tokens against all of them, or against none
and says which budget refused. ``settle`` corrects by ``actual - estimated`` exactly once.
``record_usage`` counts tokens that were not reserved (e.g. seen by a shared gateway), so agent
budgets see all of an agent's traffic whoever reports it. Alerts at 80 %, 95 % and 100 % fire
once per threshold and period, through callbacks and in the returned objects.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable

from helix.budgets.models import (
    LEVEL_BY_CODE,
    Budget,
    BudgetAlert,
    BudgetScope,
    BudgetStatus,
    Reservation,
    alert_level,
    budget_id,
    parse_budget_id,
)
from helix.budgets.store import Applied, BudgetStore, Candidate
from helix.clock import SYSTEM_CLOCK, Clock
from helix.periods import TokenPeriod, counter_ttl, period_bounds, period_key

log = logging.getLogger(__name__)
DEFAULT_ORG = "default"
# How long a settled reservation id is remembered (settling twice within it changes nothing).
SETTLE_MARKER_TTL = 86_400
_Cached = tuple[float, float, list[Candidate]]  # valid from, valid until, candidates
AlertCallback = Callable[[BudgetAlert], Awaitable[None] | None]


class TokenBudgetManager:
    """Budgets on a ``BudgetStore`` (memory or Redis)."""

    def __init__(self, store: BudgetStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self._clock = clock
        self._callbacks: list[AlertCallback] = []
        self._candidate_cache: dict[tuple[str | None, str | None, str], _Cached] = {}

    def on_alert(self, callback: AlertCallback) -> None:
        """Call ``callback`` (sync or async) for every alert this process fires."""
        self._callbacks.append(callback)

    async def set_budget(
        self,
        amount: int,
        period: TokenPeriod = TokenPeriod.DAILY,
        scope: BudgetScope = BudgetScope.ORGANIZATION,
        scope_id: str | None = None,
    ) -> Budget:
        """Limit ``scope_id`` (the default organisation if omitted) to ``amount`` per period."""
        if amount < 0:
            raise ValueError("a budget cannot be negative")
        budget = Budget(BudgetScope(scope), scope_id or DEFAULT_ORG, TokenPeriod(period), amount)
        await self.store.set_limit(budget.budget_id, amount)
        return budget

    async def remove_budget(
        self,
        period: TokenPeriod,
        scope: BudgetScope = BudgetScope.ORGANIZATION,
        scope_id: str | None = None,
    ) -> None:
        await self.store.delete_limit(budget_id(scope, scope_id or DEFAULT_ORG, period))

    async def list_budgets(self) -> list[Budget]:
        return [
            parse_budget_id(b, amount) for b, amount in sorted((await self.store.limits()).items())
        ]

    async def check_budget(
        self,
        scope: BudgetScope | None = None,
        scope_id: str | None = None,
        period: TokenPeriod | None = None,
    ) -> list[BudgetStatus]:
        """Status of every budget matching the filters (all budgets if none are given)."""
        budgets = [
            b
            for b in await self.list_budgets()
            if (scope is None or b.scope == scope)
            and (scope_id is None or b.scope_id == scope_id)
            and (period is None or b.period == period)
        ]
        now = self._clock.time()
        used = await self.store.used(
            [self._counter_key(b.budget_id, b.period, now) for b in budgets]
        )
        return [self._status(b, u, now) for b, u in zip(budgets, used, strict=True)]

    def _status(self, budget: Budget, used: int, now: float) -> BudgetStatus:
        start, end = period_bounds(budget.period, now)
        limit = budget.amount
        return BudgetStatus(
            budget.budget_id,
            budget.scope,
            budget.scope_id,
            budget.period,
            limit,
            used,
            max(0, limit - used),
            used / limit if limit else 1.0,
            alert_level(used, limit),
            start,
            end,
        )

    async def reserve(
        self,
        estimated_tokens: int,
        *,
        agent_id: str | None = None,
        service_id: str | None = None,
        org_id: str | None = None,
    ) -> Reservation:
        """Hold ``estimated_tokens`` against every applicable budget, or refuse."""
        return await self._take(estimated_tokens, agent_id, service_id, org_id, force=False)

    async def record_usage(
        self,
        tokens: int,
        *,
        agent_id: str | None = None,
        service_id: str | None = None,
        org_id: str | None = None,
    ) -> tuple[BudgetAlert, ...]:
        """Count tokens already spent (never refused)."""
        return (await self._take(tokens, agent_id, service_id, org_id, force=True)).alerts

    async def settle(self, reservation: Reservation, actual_tokens: int) -> tuple[BudgetAlert, ...]:
        """Replace the reservation's estimate by the real count (idempotent per reservation)."""
        if not reservation.granted or not reservation.counters:
            return ()
        applied = await self.store.settle(
            reservation.reservation_id,
            list(reservation.counters),
            actual_tokens - reservation.tokens,
            SETTLE_MARKER_TTL,
        )
        return await self._alerts(applied)

    async def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call never happened."""
        await self.settle(reservation, 0)

    async def _take(
        self,
        tokens: int,
        agent_id: str | None,
        service_id: str | None,
        org_id: str | None,
        *,
        force: bool,
    ) -> Reservation:
        now = self._clock.time()
        candidates = self._candidates(agent_id, service_id, org_id or DEFAULT_ORG, now)
        outcome = await self.store.reserve(candidates, tokens, force)
        rid = uuid.uuid4().hex
        if not outcome.granted:
            log.info(
                "budget %s refused %d tokens", outcome.refused and outcome.refused.budget_id, tokens
            )
            return Reservation(rid, tokens, False, refused_by=outcome.refused)
        counters = tuple((a.budget_id, a.counter_key, a.limit) for a in outcome.applied)
        return Reservation(rid, tokens, True, counters, alerts=await self._alerts(outcome.applied))

    def _candidates(
        self, agent_id: str | None, service_id: str | None, org_id: str, now: float
    ) -> list[Candidate]:
        # Keys change only at period boundaries (the next hour at the latest), so the list is
        # reused until then: building it costs more than the Redis round trip otherwise.
        cache_key = (agent_id, service_id, org_id)
        cached = self._candidate_cache.get(cache_key)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        scopes = [(BudgetScope.ORGANIZATION, org_id)]
        scopes += [(BudgetScope.SERVICE, service_id)] if service_id else []
        scopes += [(BudgetScope.AGENT, agent_id)] if agent_id else []
        found = [
            Candidate(bid, self._counter_key(bid, period, now), counter_ttl(period, now))
            for scope, sid in scopes
            for period in TokenPeriod
            for bid in [budget_id(scope, sid, period)]
        ]
        start, end = period_bounds(TokenPeriod.HOURLY, now)
        if len(self._candidate_cache) > 10_000:
            self._candidate_cache.clear()
        self._candidate_cache[cache_key] = (start.timestamp(), end.timestamp(), found)
        return found

    @staticmethod
    def _counter_key(bid: str, period: TokenPeriod, now: float) -> str:
        return f"{bid}:{period_key(period, now)}"

    async def _alerts(self, applied: tuple[Applied, ...]) -> tuple[BudgetAlert, ...]:
        if not any(a.fired for a in applied):
            return ()
        alerts = tuple(
            BudgetAlert(
                a.budget_id, LEVEL_BY_CODE[code], a.used, a.limit, a.counter_key.rsplit(":", 1)[1]
            )
            for a in applied
            for code in a.fired
        )
        for alert in alerts:
            log.warning(
                "token budget %s reached %s (%d/%d)",
                alert.budget_id,
                alert.level,
                alert.used,
                alert.limit,
            )
            for callback in self._callbacks:
                result = callback(alert)
                if inspect.isawaitable(result):
                    await result
        return alerts
