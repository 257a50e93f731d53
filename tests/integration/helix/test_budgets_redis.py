"""Budgets and usage on a real Redis: atomic under concurrency, rollover, shared by processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from helix import (
    BudgetScope,
    ManualClock,
    RedisBudgetStore,
    TokenBudgetManager,
    TokenPeriod,
    TokenTracker,
)
from helix.usage import RedisUsageStore


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield r
    await r.aclose()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_fifty_concurrent_reservers_never_overshoot(
    client: aioredis.Redis, key_prefix: str
) -> None:
    budgets = TokenBudgetManager(RedisBudgetStore(client, key_prefix))
    await budgets.set_budget(10_000, TokenPeriod.DAILY, BudgetScope.AGENT, "chat")
    granted = 0

    async def worker() -> None:
        nonlocal granted
        for _ in range(20):
            reservation = await budgets.reserve(300, agent_id="chat")
            if reservation.granted:
                granted += 1
                await budgets.settle(reservation, 300)

    await asyncio.gather(*(worker() for _ in range(50)))
    (status,) = await budgets.check_budget(scope=BudgetScope.AGENT)
    assert status.used == granted * 300
    assert status.used <= 10_000 and granted == 10_000 // 300
    assert status.alert_level == "critical"


async def test_redis_periods_roll_over_at_the_utc_boundary(
    client: aioredis.Redis, key_prefix: str
) -> None:
    clock = ManualClock(at("2025-03-02T23:59:59"))  # a Sunday
    budgets = TokenBudgetManager(RedisBudgetStore(client, key_prefix), clock)
    await budgets.set_budget(1000, TokenPeriod.WEEKLY)
    await budgets.set_budget(100, TokenPeriod.HOURLY)
    assert (await budgets.reserve(100)).granted
    assert not (await budgets.reserve(1)).granted
    clock.advance(1)  # Monday 00:00 UTC: new hour, new ISO week
    assert (await budgets.reserve(100)).granted
    assert {s.period: s.used for s in await budgets.check_budget()} == {
        "weekly": 100,
        "hourly": 100,
    }


async def test_alerts_fire_once_across_managers(client: aioredis.Redis, key_prefix: str) -> None:
    one = TokenBudgetManager(RedisBudgetStore(client, key_prefix))
    two = TokenBudgetManager(RedisBudgetStore(client, key_prefix))
    await one.set_budget(100, TokenPeriod.DAILY)
    first = await one.record_usage(85)
    second = await two.record_usage(1)
    assert [a.level for a in first] == ["warning"] and second == ()


async def test_the_same_budget_is_seen_by_another_process(redis_url: str, key_prefix: str) -> None:
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    budgets = TokenBudgetManager(RedisBudgetStore(r, key_prefix))
    await budgets.set_budget(5000, TokenPeriod.MONTHLY, BudgetScope.SERVICE, "support")
    reservation = await budgets.reserve(1234, service_id="support")
    await budgets.settle(reservation, 1000)
    await r.aclose()
    code = (
        "import asyncio, sys\n"
        "from helix import configure, get_token_budget_manager, BudgetScope\n"
        "async def main():\n"
        "    configure(redis_url=sys.argv[1], key_prefix=sys.argv[2])\n"
        "    (s,) = await get_token_budget_manager().check_budget(scope=BudgetScope.SERVICE)\n"
        "    r = await get_token_budget_manager().reserve(4001, service_id='support')\n"
        "    sys.stdout.write(f'{s.limit} {s.used} {s.remaining} {r.granted}')\n"
        "asyncio.run(main())\n"
    )
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code, redis_url, key_prefix],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout == "5000 1000 4000 False"


async def test_token_usage_in_redis_is_idempotent_and_shared(
    client: aioredis.Redis, key_prefix: str
) -> None:
    writer = TokenTracker(RedisUsageStore(client, key_prefix))
    reader = TokenTracker(RedisUsageStore(client, key_prefix))
    assert await writer.record_tokens(
        "chat", "gpt-4", 100, 150, "completion", {"user_id": "123"}, event_id="run-1"
    )
    assert not await writer.record_tokens("chat", "gpt-4", 100, 150, "completion", event_id="run-1")
    await writer.record_tokens("chat", "gpt-4o", 1, 1, "embedding")
    usage = await reader.get_usage(agent_id="chat", model="gpt-4", period=TokenPeriod.DAILY)
    assert (usage.input_tokens, usage.output_tokens, usage.requests) == (100, 150, 1)
    assert (await reader.recent(2))[0].metadata == {"user_id": "123"}


async def test_scope_ids_with_colons_are_enforced_and_listed(
    client: aioredis.Redis, key_prefix: str
) -> None:
    budgets = TokenBudgetManager(RedisBudgetStore(client, key_prefix))
    await budgets.set_budget(1_000, TokenPeriod.DAILY, BudgetScope.AGENT, "team:chat")
    first = await budgets.reserve(600, agent_id="team:chat")
    await budgets.settle(first, 900)
    refused = await budgets.reserve(200, agent_id="team:chat")
    assert first.granted and not refused.granted
    assert refused.refused_by is not None and refused.refused_by.used == 900
    (status,) = await budgets.check_budget(scope=BudgetScope.AGENT)
    assert (status.scope_id, status.used, status.remaining) == ("team:chat", 900, 100)


async def test_ids_with_control_characters_are_refused(
    client: aioredis.Redis, key_prefix: str
) -> None:
    budgets = TokenBudgetManager(RedisBudgetStore(client, key_prefix))
    await budgets.set_budget(1_000, TokenPeriod.DAILY, BudgetScope.AGENT, "chat")
    with pytest.raises(ValueError, match="control characters"):
        await budgets.reserve(10, agent_id="chat\x1ebad")
