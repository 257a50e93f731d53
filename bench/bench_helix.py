"""Helix benchmarks: token counting vs raw tiktoken, budget reserve+settle vs Redis INCRBY.

Both lines are measured side by side in one run. Counting: ``TokenCounter.count_tokens`` on 1 MB
of text against ``len(encoding.encode_ordinary(text))`` with the same encoding. Budgets: budget
operations per second (a ``reserve`` checking four budgets, or a ``settle``; each is one Lua round
trip, and the loop alternates them as a caller does around an LLM call) against plain ``INCRBY``
round trips per second, both from 20 concurrent tasks on an embedded Valkey server. Reserve and
settle pairs per second, half the operations, are reported beside the line.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import redis.asyncio as aioredis

from bench import Line, ratio_line
from helix import BudgetScope, RedisBudgetStore, TokenBudgetManager, TokenCounter, TokenPeriod
from helix.encodings import get_encoding
from helm.embedded import EmbeddedRedis

WORDS = [
    "the",
    "agent",
    "answered",
    "a",
    "question",
    "about",
    "tokens",
    "budgets",
    "latency",
    "and",
    "cost",
    "in",
    "production",
]
SECONDS = 3.0
CONCURRENCY = 20


def _text(size: int = 1_000_000) -> str:
    rng = random.Random(7)
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(" ".join(rng.choices(WORDS, k=12)) + ".\n")
    return "".join(parts)[:size]


def _best_of(fn: object, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def counting_line() -> Line:
    text, counter = _text(), TokenCounter()
    encoding = get_encoding("cl100k_base")
    counter.count_tokens("warm up", model="gpt-4")
    raw = _best_of(lambda: len(encoding.encode_ordinary(text)))
    ours = _best_of(lambda: counter.count_tokens(text, model="gpt-4"))
    mb = len(text.encode()) / 1e6
    return ratio_line(
        "helix count_tokens throughput",
        mb / ours,
        mb / raw,
        "MB/s",
        0.9,
        tokens=counter.count_tokens(text, model="gpt-4"),
    )


async def _rate(op: object) -> float:
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op()  # type: ignore[operator]
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - start)


async def budget_line(url: str) -> Line:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    budgets = TokenBudgetManager(RedisBudgetStore(client, prefix))
    await budgets.set_budget(10**15, TokenPeriod.DAILY)
    await budgets.set_budget(10**15, TokenPeriod.MONTHLY)
    await budgets.set_budget(10**15, TokenPeriod.HOURLY, BudgetScope.AGENT, "chat")
    await budgets.set_budget(10**15, TokenPeriod.DAILY, BudgetScope.AGENT, "chat")

    async def reserve_settle() -> None:
        await budgets.settle(await budgets.reserve(500, agent_id="chat"), 400)

    async def incrby() -> None:
        await client.incrby(f"{prefix}plain", 500)

    try:
        baseline = await _rate(incrby)
        pairs = await _rate(reserve_settle)
    finally:
        await client.aclose()
    return ratio_line(
        "helix budget operations (reserve or settle) vs INCRBY round trips",
        2 * pairs,
        baseline,
        "ops/s",
        0.5,
        concurrency=CONCURRENCY,
        budgets_checked=4,
        reserve_settle_pairs_per_s=round(pairs, 1),
        pair_ratio=round(pairs / baseline, 3),
    )


async def run() -> list[Line]:
    server = EmbeddedRedis()
    server.start()
    try:
        return [counting_line(), await budget_line(server.url)]
    finally:
        server.stop()


if __name__ == "__main__":
    for line in asyncio.run(run()):
        print(line)
