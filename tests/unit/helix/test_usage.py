"""The token tracker answers by agent, model, operation and period; event ids dedupe."""

from __future__ import annotations

from helix import ManualClock, TokenPeriod, TokenTracker


async def test_queries_by_dimension_and_period() -> None:
    clock = ManualClock(1_700_000_000.0 - 1_700_000_000.0 % 86_400 + 3600)  # 01:00 UTC
    tracker = TokenTracker(clock=clock)
    await tracker.record_tokens("chat", "gpt-4", 100, 150, "completion", {"user_id": "1"})
    await tracker.record_tokens("chat", "gpt-4o", 10, 20, "embedding")
    await tracker.record_tokens("search", "gpt-4", 1, 2, "completion")
    assert (await tracker.get_usage(agent_id="chat")).total_tokens == 280
    assert (await tracker.get_usage(model="gpt-4")).input_tokens == 101
    assert (await tracker.get_usage(operation="embedding")).requests == 1
    by_agent = await tracker.usage_by("agent", period=TokenPeriod.DAILY)
    assert {k: v.total_tokens for k, v in by_agent.items()} == {"chat": 280, "search": 3}
    clock.advance(86_400)
    assert (await tracker.get_usage(period=TokenPeriod.DAILY)).total_tokens == 0
    assert (await tracker.get_usage(period=TokenPeriod.WEEKLY)).total_tokens in (0, 283)
    assert (await tracker.recent(1))[0].agent_id == "search"


async def test_event_id_makes_recording_idempotent() -> None:
    tracker = TokenTracker(clock=ManualClock())
    assert await tracker.record_tokens("a", "gpt-4", 5, 5, event_id="e1")
    assert not await tracker.record_tokens("a", "gpt-4", 5, 5, event_id="e1")
    assert (await tracker.get_usage()).total_tokens == 10
