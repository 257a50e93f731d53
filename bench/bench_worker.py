"""Worker overhead: runs per second with everything on, against a bare loop over the same model.

Baseline: a loop calling the offline provider set to a 50 ms call, nothing else. Figure: one
worker (``WorkerApp``) running an agent that makes the same single call, with telemetry to Kafka
(acks=all), the control checks before each run and the budget reserve/settle around the call, on
the embedded broker and Redis. Both run for the same time in one process, one after the other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench import Line, ratio_line
from helix import BudgetScope, TokenPeriod
from helm.budgets import budget_manager
from helm.config import AgentConfig
from helm.embedded import EmbeddedBroker, EmbeddedRedis
from helm.settings import KafkaSettings, RedisSettings
from services.worker.app import build_app
from services.worker.llm.base import LLMRequest
from services.worker.llm.offline import OfflineProvider
from services.worker.settings import WorkerSettings

SECONDS = 5.0
DELAY_MS = 50.0
AGENT = AgentConfig(id="bench-agent", service="bench", kind="custom", run_interval_s=0)


async def one_call(ctx: Any) -> str:
    return str(await ctx.llm.complete("How is the weather?", system="Answer briefly."))


async def bare_rate() -> float:
    provider = OfflineProvider(delay_ms=DELAY_MS)
    request = LLMRequest(
        system="Answer briefly.", messages=[("user", "How is the weather?")], model="m"
    )
    await provider.complete(request)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        await provider.complete(request)
        done += 1
    return done / (time.perf_counter() - start)


async def worker_rate(bootstrap: str, redis_url: str) -> float:
    tag = uuid.uuid4().hex[:8]
    settings = WorkerSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=f"b{tag}.", fetch_max_wait_ms=20),
        redis=RedisSettings(url=redis_url, prefix=f"bench:{tag}:"),
        agent=AGENT.id,
        instance_id="bench-0",
        ops_port=0,
        offline_delay_ms=DELAY_MS,
    )
    app = build_app(settings, agent_config=AGENT, agent_fn=one_call)
    await app.start()
    stop = asyncio.Event()
    try:
        budgets = budget_manager(app.store)
        await budgets.set_budget(10**12, TokenPeriod.DAILY, BudgetScope.AGENT, AGENT.id)
        await budgets.set_budget(10**12, TokenPeriod.DAILY)
        await app.run_once(one_call)
        before, start = app.runs_total, time.perf_counter()
        loop = asyncio.create_task(app.run_loop(stop))
        await asyncio.sleep(SECONDS)
        runs, elapsed = app.runs_total - before, time.perf_counter() - start
        stop.set()
        await loop
        return runs / elapsed
    finally:
        await app.stop()


async def run() -> list[Line]:
    broker, redis = EmbeddedBroker(), EmbeddedRedis()
    broker.start()
    redis.start()
    try:
        baseline = await bare_rate()
        figure = await worker_rate(broker.bootstrap, redis.url)
    finally:
        broker.stop()
        redis.stop()
    return [
        ratio_line(
            "worker runs/s (telemetry, control, budgets) vs bare 50 ms loop",
            figure,
            baseline,
            "runs/s",
            0.9,
            model_call_ms=DELAY_MS,
        )
    ]


if __name__ == "__main__":
    for line in asyncio.run(run()):
        print(line)
