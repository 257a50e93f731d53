"""Budget value types: what a budget is, its status, reservations and alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from helix.periods import TokenPeriod


class BudgetScope(StrEnum):
    ORGANIZATION = "org"
    SERVICE = "service"
    AGENT = "agent"


class AlertLevel(StrEnum):
    NONE = "none"
    WARNING = "warning"
    CRITICAL = "critical"
    EXCEEDED = "exceeded"


# Thresholds in utilisation, highest first: the alert level is the first one reached.
THRESHOLDS: tuple[tuple[AlertLevel, float], ...] = (
    (AlertLevel.EXCEEDED, 1.0),
    (AlertLevel.CRITICAL, 0.95),
    (AlertLevel.WARNING, 0.8),
)
LEVEL_CODES = {AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2, AlertLevel.EXCEEDED: 3}
LEVEL_BY_CODE = {code: level for level, code in LEVEL_CODES.items()}


def alert_level(used: int, limit: int) -> AlertLevel:
    utilization = used / limit if limit > 0 else 1.0
    return next((lvl for lvl, t in THRESHOLDS if utilization >= t), AlertLevel.NONE)


@dataclass(frozen=True)
class Budget:
    """A limit of ``amount`` tokens per ``period`` for one scope."""

    scope: BudgetScope
    scope_id: str
    period: TokenPeriod
    amount: int

    @property
    def budget_id(self) -> str:
        return budget_id(self.scope, self.scope_id, self.period)


def budget_id(scope: BudgetScope, scope_id: str, period: TokenPeriod) -> str:
    return f"{scope.value}:{scope_id}:{period.value}"


def parse_budget_id(value: str, amount: int) -> Budget:
    scope, rest = value.split(":", 1)
    scope_id, period = rest.rsplit(":", 1)  # scope ids may hold ":" (e.g. "team:chat")
    return Budget(BudgetScope(scope), scope_id, TokenPeriod(period), amount)


@dataclass(frozen=True)
class BudgetStatus:
    """One budget's state in the current period."""

    budget_id: str
    scope: BudgetScope
    scope_id: str
    period: TokenPeriod
    limit: int
    used: int
    remaining: int
    utilization: float
    alert_level: AlertLevel
    period_start: datetime
    resets_at: datetime


@dataclass(frozen=True)
class BudgetAlert:
    """A threshold crossed, fired once per budget, threshold and period."""

    budget_id: str
    level: AlertLevel
    used: int
    limit: int
    period_key: str


@dataclass(frozen=True)
class Refusal:
    """The budget that refused a reservation."""

    budget_id: str
    used: int
    limit: int
    requested: int


@dataclass(frozen=True)
class Reservation:
    """Tokens held against every applicable budget until ``settle``.

    ``granted`` is False when a budget refused; ``refused_by`` then names it and nothing was held.
    """

    reservation_id: str
    tokens: int
    granted: bool
    counters: tuple[tuple[str, str, int], ...] = ()  # (budget id, counter key, limit)
    refused_by: Refusal | None = None
    alerts: tuple[BudgetAlert, ...] = field(default=())
