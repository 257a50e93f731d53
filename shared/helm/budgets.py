"""Helix's token budgets on Helm's Redis, under Helm's key prefix, shared by every service.

Workers reserve before each LLM call and settle after; the organisation governor watches the
utilisation; the gateway reads and sets budgets. All of them see the same counters.
"""

from __future__ import annotations

from helix import RedisBudgetStore, TokenBudgetManager
from helix.clock import SYSTEM_CLOCK, Clock
from helm.store import Store


def budget_manager(store: Store, clock: Clock = SYSTEM_CLOCK) -> TokenBudgetManager:
    """The budget manager over ``store``'s Redis connection and key prefix (and ``clock``)."""
    return TokenBudgetManager(RedisBudgetStore(store.redis, store.prefix), clock)
