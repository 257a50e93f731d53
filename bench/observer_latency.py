"""Drift to pause: from producing a drifting run to a worker's control consumer getting its pause.

The observer and the governor run as processes (``python -m services.observer`` and
``services.governor``; the governor is a black box), every consumer with the same fetch wait
(20 ms, as DESIGN.md advises, then the stack's default of 50 ms), under a
background load of 1,000 healthy runs a second over 100 agents. Each sample is an agent of its
own with a warm baseline, then one run with ten times its tokens, timed from just before it is
sent to the ``PauseAgent`` arriving at a consumer that reads helm.control as a worker does
(no group, from the end). The baseline column is one hop measured beside it: the same drifting
run from its producer to a plain consumer of helm.telemetry. Goal: p99 <= 100 ms.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench import Line
from helix.tracking import percentile
from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store

SAMPLES, AGENTS, RATE = 60, 100, 1000


def _run(agent: str, tokens: int = 500) -> c.RunCompleted:
    return c.RunCompleted(agent_id=agent, input_tokens=tokens, output_tokens=100, confidence=0.9)


class Clock:
    """When each spike was sent, reached telemetry's consumer, and its pause reached control's."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.hop: dict[str, float] = {}
        self.paused: dict[str, float] = {}

    async def on_run(self, run: c.RunCompleted) -> None:
        if run.agent_id in self.sent and run.input_tokens > 1000:
            self.hop.setdefault(run.agent_id, time.time())

    async def on_control(self, cmd: Any) -> None:
        if isinstance(cmd, c.PauseAgent):
            self.paused.setdefault(cmd.agent_id, time.time())


async def _background(bus: Bus, stop: asyncio.Event) -> None:
    rng, names = random.Random(3), [f"bg-{i:03d}" for i in range(AGENTS)]
    while not stop.is_set():
        batch = [_run(rng.choice(names), rng.randint(400, 600)) for _ in range(RATE // 20)]
        started = time.monotonic()
        await bus.publish_many(c.TELEMETRY, batch)
        await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - started)))


def _services(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("observer", "governor")
    ]


async def _until(probe: Callable[[], Awaitable[bool]], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while not await probe():
        if time.monotonic() > end:
            raise TimeoutError("the observer and governor did not answer in time")
        await asyncio.sleep(0.1)


async def measure(kafka: KafkaSettings, redis: RedisSettings, env: dict[str, str]) -> Clock:
    bus, clock, stop = Bus(kafka, "bench-latency"), Clock(), asyncio.Event()
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    procs = _services(env)
    store = Store(redis)
    readers = [
        bus.consumer([c.CONTROL], None, clock.on_control, from_latest=True),
        bus.consumer([c.TELEMETRY], None, clock.on_run, from_latest=True),
    ]
    tasks = [asyncio.create_task(r.run(stop)) for r in readers]
    tasks.append(asyncio.create_task(_background(bus, stop)))
    try:
        agents = [f"lat-{uuid.uuid4().hex[:6]}-{i}" for i in range(SAMPLES + 1)]
        await bus.publish_many(c.TELEMETRY, [_run(a) for a in agents for _ in range(5)])

        async def warm() -> bool:
            return (await store.get_metrics(agents[-1])).get("runs") == 5

        await _until(warm, 60)
        for agent in agents:  # the first is a warm-up of the whole path, left out
            clock.sent[agent] = time.time()
            await bus.publish(c.TELEMETRY, _run(agent, 5000))
            await asyncio.sleep(0.15)

        async def all_paused() -> bool:
            return set(agents) <= set(clock.paused) and set(agents) <= set(clock.hop)

        await _until(all_paused, 30)
        del clock.sent[agents[0]]
        return clock
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        await bus.stop()
        await store.close()


async def latency_lines(bootstrap: str, redis_url: str) -> list[Line]:
    """At the fetch wait DESIGN.md advises (20 ms), and at the stack's default (50 ms)."""
    return [await latency_line(bootstrap, redis_url, ms) for ms in (20, 50)]


async def latency_line(bootstrap: str, redis_url: str, fetch_ms: int) -> Line:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=f"l{tag}.", fetch_max_wait_ms=fetch_ms)
    redis = RedisSettings(url=redis_url, prefix=f"bench:l{tag}:")
    env = {
        **os.environ,
        "HELM_KAFKA_BOOTSTRAP": bootstrap,
        "HELM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "HELM_REDIS_URL": redis_url,
        "HELM_REDIS_PREFIX": redis.prefix,
        "HELM_OBSERVER_OPS_PORT": "0",
        "HELM_GOVERNOR_OPS_PORT": "0",
        "HELM_OBSERVER_GROUP": f"lat-obs-{tag}",
        "HELM_GOVERNOR_GROUP": f"lat-gov-{tag}",
        "HELM_LOG_LEVEL": "WARNING",
        "HELM_KAFKA_FETCH_MAX_WAIT_MS": str(fetch_ms),
    }
    clock = await measure(kafka, redis, env)
    pause = sorted((clock.paused[a] - t) * 1000 for a, t in clock.sent.items())
    hop = sorted((clock.hop[a] - t) * 1000 for a, t in clock.sent.items())
    p50, p99 = percentile(pause, 0.5), percentile(pause, 0.99)
    return Line(
        f"drift run -> worker gets PauseAgent, p99 (fetch wait {fetch_ms} ms)",
        p99,
        percentile(hop, 0.99),
        "ms",
        "p99 <= 100 ms",
        None,
        p99 <= 100,
        {
            "p50_ms": round(p50, 1),
            "one_hop_p50_ms": round(percentile(hop, 0.5), 1),
            "samples": len(pause),
            "background_runs_per_s": RATE,
            "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
        },
    )
