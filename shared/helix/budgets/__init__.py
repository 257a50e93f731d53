"""Token budgets: limits per organisation, service and agent, enforced by reserve and settle."""

from helix.budgets.manager import TokenBudgetManager
from helix.budgets.models import (
    AlertLevel,
    Budget,
    BudgetAlert,
    BudgetScope,
    BudgetStatus,
    Refusal,
    Reservation,
)
from helix.budgets.redis_store import RedisBudgetStore
from helix.budgets.store import BudgetStore, MemoryBudgetStore

__all__ = [
    "AlertLevel",
    "Budget",
    "BudgetAlert",
    "BudgetScope",
    "BudgetStatus",
    "BudgetStore",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "Refusal",
    "Reservation",
    "TokenBudgetManager",
]
