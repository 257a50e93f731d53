"""A worker's runs as telemetry: the real anthropic SDK against a local Messages API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from helix import BudgetScope, TokenPeriod
from helm.budgets import budget_manager
from helm.config import AgentConfig
from helm.settings import KafkaSettings, RedisSettings
from services.worker.app import WorkerApp, build_app
from services.worker.llm.anthropic_provider import AnthropicProvider
from services.worker.settings import WorkerSettings
from tests.support.messages_api import MessagesAPI, ok, slow_first_token, status

AGENT = AgentConfig(
    id="llm-agent", service="risk-ops", kind="custom", model="claude-haiku-4-5", max_tokens=256
)


async def one_call(ctx: Any) -> str:
    text = await ctx.llm.complete("Classify this.", system="You classify.")
    ctx.report_confidence(0.8)
    return str(text)


@pytest.fixture
def server() -> Iterator[MessagesAPI]:
    with MessagesAPI() as api:
        yield api


@pytest.fixture
async def worker(
    server: MessagesAPI, kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> AsyncIterator[WorkerApp]:
    settings = WorkerSettings(
        kafka=kafka_settings, redis=redis_settings, agent=AGENT.id, instance_id="llm-0", ops_port=0
    )
    provider = AnthropicProvider(
        "test-key", base_url=server.base_url, backoff_base_s=0.01, backoff_max_s=0.05
    )
    app = build_app(settings, agent_config=AGENT, chat_fn=one_call, provider=provider)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_run_telemetry_carries_the_servers_token_counts_ttft_cost_and_retries(
    worker: WorkerApp, server: MessagesAPI
) -> None:
    server.script(
        status(429, retry_after=0),
        slow_first_token(0.3, "low risk", input_tokens=1234, output_tokens=56),
    )
    ev = await worker.run_once(one_call)
    assert (ev.input_tokens, ev.output_tokens) == (1234, 56)
    assert ev.provider == "anthropic" and ev.model == "claude-haiku-4-5"
    assert ev.retries == 1 and ev.outcome == "ok"
    assert ev.ttft_ms is not None and ev.ttft_ms >= 300
    assert ev.latency_ms >= ev.ttft_ms
    assert ev.cost == pytest.approx((1234 * 1.0 + 56 * 5.0) / 1_000_000)  # the price table
    assert ev.confidence == 0.8


async def test_when_retries_are_spent_the_outcome_says_why(
    worker: WorkerApp, server: MessagesAPI
) -> None:
    server.default = status(529)
    ev = await worker.run_once(one_call)
    assert ev.outcome == "overloaded"
    assert ev.retries == 2  # the agent's default max_retries
    assert ev.error and "overloaded" in ev.error.lower()
    assert len(server.message_requests) == 3


async def test_a_rate_limited_run_is_classified(worker: WorkerApp, server: MessagesAPI) -> None:
    server.default = status(429, retry_after=0)
    ev = await worker.run_once(one_call)
    assert ev.outcome == "rate_limited"


async def test_an_exhausted_budget_stops_llm_calls(worker: WorkerApp, server: MessagesAPI) -> None:
    budgets = budget_manager(worker.store)
    await budgets.set_budget(
        amount=100, period=TokenPeriod.DAILY, scope=BudgetScope.AGENT, scope_id=AGENT.id
    )
    ev = await worker.run_once(one_call)
    assert ev.outcome == "budget_exceeded"
    assert ev.error and "budget" in ev.error
    assert server.requests == []
    assert (ev.input_tokens, ev.output_tokens) == (0, 0)


async def test_a_budget_is_settled_with_the_real_count(
    worker: WorkerApp, server: MessagesAPI
) -> None:
    budgets = budget_manager(worker.store)
    await budgets.set_budget(
        amount=100_000, period=TokenPeriod.DAILY, scope=BudgetScope.SERVICE, scope_id="risk-ops"
    )
    server.script(ok("fine", input_tokens=700, output_tokens=30))
    ev = await worker.run_once(one_call)
    assert ev.outcome == "ok"
    [status_] = await budgets.check_budget(scope=BudgetScope.SERVICE, scope_id="risk-ops")
    assert status_.used == 730
