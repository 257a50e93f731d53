"""Budgets in memory: scopes, reserve/settle, alerts once per threshold, UTC rollover."""

from __future__ import annotations

from datetime import UTC, datetime

from helix import BudgetScope, ManualClock, MemoryBudgetStore, TokenBudgetManager, TokenPeriod
from helix.periods import period_key


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def manager(start: str = "2025-01-31T12:00:00") -> tuple[TokenBudgetManager, ManualClock]:
    clock = ManualClock(at(start))
    return TokenBudgetManager(MemoryBudgetStore(clock), clock), clock


async def test_reserve_refuses_with_the_budget_that_refused() -> None:
    budgets, _ = manager()
    await budgets.set_budget(1000, TokenPeriod.DAILY)
    await budgets.set_budget(100, TokenPeriod.HOURLY, BudgetScope.AGENT, "chat")
    ok = await budgets.reserve(60, agent_id="chat")
    assert ok.granted
    refused = await budgets.reserve(60, agent_id="chat")
    assert not refused.granted and refused.refused_by is not None
    assert refused.refused_by.budget_id == "agent:chat:hourly"
    assert (await budgets.reserve(60, agent_id="other")).granted  # only the org budget applies
    org = (await budgets.check_budget(scope=BudgetScope.ORGANIZATION))[0]
    assert org.used == 120  # the refused reservation held nothing


async def test_settle_corrects_once() -> None:
    budgets, _ = manager()
    await budgets.set_budget(1000, TokenPeriod.DAILY)
    reservation = await budgets.reserve(100)
    await budgets.settle(reservation, 30)
    await budgets.settle(reservation, 30)
    assert (await budgets.check_budget())[0].used == 30


async def test_alerts_fire_once_per_threshold_per_period() -> None:
    budgets, clock = manager()
    fired: list[str] = []
    budgets.on_alert(lambda alert: fired.append(alert.level))
    await budgets.set_budget(100, TokenPeriod.HOURLY)
    for _ in range(12):
        await budgets.record_usage(10)
    assert fired == ["warning", "critical", "exceeded"]
    assert (await budgets.check_budget())[0].alert_level == "exceeded"
    clock.advance(3600)
    await budgets.record_usage(85)
    assert fired[-1] == "warning" and len(fired) == 4


async def test_periods_roll_over_at_utc_boundaries() -> None:
    assert period_key(TokenPeriod.WEEKLY, at("2025-01-26T23:59:59")) == "2025-W04"  # Sunday
    assert period_key(TokenPeriod.WEEKLY, at("2025-01-27T00:00:00")) == "2025-W05"  # Monday
    assert period_key(TokenPeriod.MONTHLY, at("2024-12-31T23:59:59")) == "2024-12"
    budgets, clock = manager("2025-01-31T23:59:00")
    await budgets.set_budget(1000, TokenPeriod.DAILY)
    await budgets.set_budget(1000, TokenPeriod.MONTHLY)
    await budgets.record_usage(400)
    clock.advance(59)
    assert {s.period: s.used for s in await budgets.check_budget()} == {
        "daily": 400,
        "monthly": 400,
    }
    clock.advance(1)  # 2025-02-01T00:00:00Z: a new day and a new month
    statuses = {s.period: s for s in await budgets.check_budget()}
    assert statuses[TokenPeriod.DAILY].used == 0 and statuses[TokenPeriod.MONTHLY].used == 0
    assert statuses[TokenPeriod.MONTHLY].resets_at == datetime(2025, 3, 1, tzinfo=UTC)
