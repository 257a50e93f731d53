"""Observer benchmarks, each measured beside its baseline in one run on the embedded broker.

- Throughput: the observer (``ObserverApp``, the three default rules, checkpoints and metrics in
  Redis) reading N RunCompleted events, against a bare aiokafka consumer in a consumer group
  that reads and decodes the same events into the contract (``codec.decode``) and commits after
  each poll. Both timed from their first record to their last, three rounds interleaved, the best
  of each kept (the machine may be busy with other work). Goal: ratio >= 0.5.
- Memory per tracked agent with 10,000 agents, each with a full baseline (25 runs), measured with
  tracemalloc around the observer's handler and a flush; the baseline column is what one
  ``helix.LLMResourceTracker`` per agent holds over its 300 s window at one run per second (the
  observer's own figure does not grow with traffic). Goal: <= 4 KB.
- Drift to pause: see ``bench.observer_latency``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import Line, ratio_line
from bench.observer_latency import latency_lines
from helix import LLMResourceTracker
from helm import codec
from helm import contracts as c
from helm.bus import Bus, Position
from helm.config import DriftConfig
from helm.embedded import EmbeddedBroker, EmbeddedRedis
from helm.metrics import new_registry
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.observer.app import build_app
from services.observer.handlers import Observer
from services.observer.metrics import ObserverMetrics
from services.observer.settings import ObserverSettings

EVENTS, AGENTS, ROUNDS = 100_000, 1_000, 5  # best of five each: one round swings ±20 %
MEMORY_AGENTS, RUNS_EACH = 10_000, 25


def runs(n: int, agents: int, seed: int = 1) -> list[c.RunCompleted]:
    rng = random.Random(seed)
    return [
        c.RunCompleted(
            agent_id=f"agent-{rng.randrange(agents):05d}",
            service_id="bench",
            model="claude-haiku-4-5",
            input_tokens=rng.randint(300, 600),
            output_tokens=rng.randint(100, 200),
            latency_ms=rng.uniform(200, 400),
            ttft_ms=rng.uniform(50, 100),
            cost=rng.uniform(0.001, 0.002),
            confidence=rng.uniform(0.7, 0.99),
        )
        for _ in range(n)
    ]


async def _produce(kafka: KafkaSettings, events: list[c.RunCompleted]) -> None:
    await Bus(kafka, "bench").ensure_topics(c.FIXED_TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=10)
    await producer.start()
    try:
        topic = kafka.topic_prefix + c.TELEMETRY
        for i in range(0, len(events), 5000):
            chunk = events[i : i + 5000]
            futures = [
                await producer.send(topic, codec.encode(e), key=e.agent_id.encode()) for e in chunk
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def bare_rate(kafka: KafkaSettings, n: int) -> float:
    """Events/s of a plain consumer that reads, decodes and commits."""
    consumer = AIOKafkaConsumer(
        kafka.topic_prefix + c.TELEMETRY,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batch.values():
                first = first or time.perf_counter()
                seen += len([codec.decode(c.TELEMETRY, r.value) for r in records])
            if batch:
                await consumer.commit()
        return n / (time.perf_counter() - first)
    finally:
        await consumer.stop()


async def observer_rate(kafka: KafkaSettings, redis: RedisSettings, n: int) -> float:
    """Events/s of the observer service on the same topic (its own group)."""
    group = f"bench-observer-{uuid.uuid4().hex[:8]}"
    settings = ObserverSettings(kafka=kafka, redis=redis, ops_port=0, group=group)
    app = build_app(settings)
    done, first, last = 0, 0.0, 0.0
    finished = asyncio.Event()
    handle = app.observer.handle

    async def timed(batch: list[c.RunCompleted], position: Position) -> None:
        nonlocal done, first, last
        first = first or time.perf_counter()
        await handle(batch, position)
        done, last = done + len(batch), time.perf_counter()
        if done >= n:
            finished.set()

    app.observer.handle = timed  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    await app.start()
    try:
        tasks = [asyncio.create_task(loop) for loop in app.loops(stop)]
        await asyncio.wait_for(finished.wait(), 300)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        await app.stop()
    return n / (last - first)


async def throughput_line(kafka: KafkaSettings, redis: RedisSettings) -> Line:
    await _produce(kafka, runs(EVENTS, AGENTS))
    bare: list[float] = []
    ours: list[float] = []
    for round_ in range(ROUNDS):  # interleaved, best of each: the machine may be shared
        bare.append(await bare_rate(kafka, EVENTS))
        fresh = redis.model_copy(update={"prefix": f"{redis.prefix}{round_}:"})
        ours.append(await observer_rate(kafka, fresh, EVENTS))
    return ratio_line(
        "observer events/s vs bare consumer+decode",
        max(ours),
        max(bare),
        "events/s",
        0.5,
        events=EVENTS,
        agents=AGENTS,
        rules="the three defaults",
        rounds=ROUNDS,
    )


async def _retained(fill: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    """Bytes still allocated after ``fill`` (and a collection), and what it returned."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = await fill()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


async def memory_line(redis: RedisSettings) -> Line:
    events = runs(MEMORY_AGENTS * RUNS_EACH, MEMORY_AGENTS, seed=2)
    store = Store(redis)
    bus = Bus(KafkaSettings(), "bench-unused")  # a healthy stream publishes nothing
    observer = Observer(bus, store, DriftConfig(), ObserverMetrics(new_registry()))

    async def fill() -> Observer:
        for i in range(0, len(events), 500):
            await observer.handle(events[i : i + 500], (c.TELEMETRY, 0, i + 500))
        await observer.flush()  # as the service does a few times a second
        return observer

    try:
        used, _ = await _retained(fill)
        tracked = len(observer.agents)
    finally:
        await store.close()
    tracker_bytes, trackers = await _retained(lambda: _trackers(200, 300))
    per_tracker = tracker_bytes / len(trackers)
    figure = used / tracked
    return Line(
        "observer memory per tracked agent",
        figure,
        per_tracker,
        "bytes",
        "<= 4096 bytes",
        figure / per_tracker,
        figure <= 4096,
        {
            "agents": tracked,
            "runs_each": RUNS_EACH,
            "baseline": "one LLMResourceTracker per agent, 300 s window at 1 run/s",
        },
    )


async def _trackers(agents: int, samples: int) -> list[LLMResourceTracker]:
    trackers = [LLMResourceTracker(f"agent-{i}", "m", window_size=300) for i in range(agents)]
    for t in trackers:
        for _ in range(samples):
            await t.record_request(400, 150, 300.0, 80.0, 0.0015)
    return trackers


async def run() -> list[Line]:
    gc.freeze()  # as ``python -m services.observer`` does; both consumers run after it
    broker, redis_server = EmbeddedBroker(), EmbeddedRedis()
    broker.start()
    redis_server.start()
    try:
        tag = uuid.uuid4().hex[:8]
        kafka = KafkaSettings(
            bootstrap=broker.bootstrap, topic_prefix=f"b{tag}.", fetch_max_wait_ms=20
        )
        redis = RedisSettings(url=redis_server.url, prefix=f"bench:{tag}:")
        lines = [await throughput_line(kafka, redis), await memory_line(redis)]
        lines += await latency_lines(broker.bootstrap, redis_server.url)
        return lines
    finally:
        broker.stop()
        redis_server.stop()


if __name__ == "__main__":
    for line in asyncio.run(run()):
        print(line)
