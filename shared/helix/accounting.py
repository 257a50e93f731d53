"""Process-wide token tracker and budget manager, in Redis when configured, else in memory.

``configure(redis_url=..., key_prefix=...)`` chooses explicitly; otherwise the first getter call
uses ``HELM_REDIS_URL`` (and ``HELIX_KEY_PREFIX``) from the environment, falling back to memory.
Every process configured with the same URL and prefix shares the same budgets and usage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis.asyncio as aioredis

from helix.budgets.manager import TokenBudgetManager
from helix.budgets.redis_store import RedisBudgetStore
from helix.budgets.store import MemoryBudgetStore
from helix.clock import SYSTEM_CLOCK, Clock
from helix.usage import MemoryUsageStore, RedisUsageStore, TokenTracker

DEFAULT_PREFIX = "helix:"


@dataclass
class _Accounting:
    tracker: TokenTracker
    budgets: TokenBudgetManager
    redis: aioredis.Redis | None


_current: _Accounting | None = None


def configure(
    redis_url: str | None = None, key_prefix: str = DEFAULT_PREFIX, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Choose where the shared tracker and budgets live (Redis if ``redis_url``, else memory)."""
    global _current
    if redis_url:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        _current = _Accounting(
            TokenTracker(RedisUsageStore(client, key_prefix), clock),
            TokenBudgetManager(RedisBudgetStore(client, key_prefix), clock),
            client,
        )
    else:
        _current = _Accounting(
            TokenTracker(MemoryUsageStore(), clock),
            TokenBudgetManager(MemoryBudgetStore(clock), clock),
            None,
        )


def _accounting() -> _Accounting:
    if _current is None:
        configure(
            os.environ.get("HELM_REDIS_URL") or None,
            os.environ.get("HELIX_KEY_PREFIX", DEFAULT_PREFIX),
        )
    assert _current is not None
    return _current


def get_token_tracker() -> TokenTracker:
    """The process-wide token usage tracker."""
    return _accounting().tracker


def get_token_budget_manager() -> TokenBudgetManager:
    """The process-wide token budget manager."""
    return _accounting().budgets


async def reset() -> None:
    """Close the Redis connection, if any, and forget the configuration (tests, shutdown)."""
    global _current
    if _current is not None and _current.redis is not None:
        await _current.redis.aclose()
    _current = None
