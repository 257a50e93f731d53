"""The fault rig: the whole stack under a steady load, with servers the test can stop and restart.

The rig owns its broker and its Redis (persistent, so a restart keeps what was acknowledged) and
starts ``helmctl up`` against them, as an operator running Helm on real servers would. A load of
healthy runs for synthetic agents flows the whole time; every run the broker acknowledged is
remembered by run id, and the observer's per-agent counters say what was counted, so each fault
ends with: produced, counted, duplicates, lost, and the time the system took to recover.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helm import contracts as c
from helm.bus import Bus
from helm.embedded import EmbeddedBroker, EmbeddedRedis
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from tests.e2e.stack import RunningStack, start_stack

AGENTS = [f"fault-{i:02d}" for i in range(20)]
REPORTS: list[str] = []  # one line per fault, printed at the end of the session
SPIKE_EVERY = 997


def healthy_run(agent: str, rng: random.Random, seq: int) -> c.RunCompleted:
    return c.RunCompleted(
        agent_id=agent,
        service_id="faults",
        instance_id=f"load-{agent}",
        seq=seq,
        model="claude-haiku-4-5",
        input_tokens=int(rng.gauss(600, 40)),
        output_tokens=int(rng.gauss(150, 15)),
        latency_ms=max(5.0, rng.gauss(300, 30)),
        confidence=min(1.0, max(0.7, rng.gauss(0.88, 0.03))),
    )


@dataclass
class Load:
    """Publishes ``rate`` runs/s; remembers every run id the broker acknowledged.

    Runs are healthy but for a token spike every ``SPIKE_EVERY`` runs, so drift, pauses and
    recoveries keep happening and the governors act while faults strike.
    """

    bus: Bus
    rate: float = 100.0
    sent: int = 0
    acked: set[str] = field(default_factory=set)
    failed: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    def next_run(self) -> c.RunCompleted:
        i = self.sent
        self.sent += 1
        run = healthy_run(AGENTS[i % len(AGENTS)], self.rng, i // len(AGENTS) + 1)
        if i % SPIKE_EVERY == SPIKE_EVERY - 1:
            run = run.model_copy(update={"input_tokens": run.input_tokens * 20})
        return run

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            run = self.next_run()
            try:
                ack = await self.bus.publish_soon(c.TELEMETRY, run)
                ack.add_done_callback(functools.partial(self._done, run_id=run.run_id))
            except Exception:
                self.failed += 1
            await asyncio.sleep(1 / self.rate)

    def _done(self, ack: asyncio.Future[Any], run_id: str) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self.failed += 1
        else:
            self.acked.add(run_id)


@dataclass
class Rig:
    workdir: Path
    broker: EmbeddedBroker
    redis: EmbeddedRedis
    stack: RunningStack
    bus: Bus
    store: Store
    load: Load
    stop_load: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def counted(self) -> int:
        total = 0
        for agent in AGENTS:
            total += int((await self.store.get_metrics(agent)).get("runs") or 0)
        return total

    def start_load(self) -> None:
        self.stop_load = asyncio.Event()
        self.tasks = [asyncio.create_task(self.load.run(self.stop_load))]

    async def settle(self, deadline_s: float = 60.0) -> int:
        """Stop the load and wait until the observer's counters stop moving."""
        self.stop_load.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        last, still, end = -1, 0, time.monotonic() + deadline_s
        while time.monotonic() < end and still < 6:
            now = await self.counted()
            still = still + 1 if now == last and now >= len(self.load.acked) else 0
            last = now
            await asyncio.sleep(0.5)
        return last


async def start_rig(workdir: Path, rate: float = 100.0) -> Rig:
    broker = EmbeddedBroker(log_dir=workdir / "servers")
    redis = EmbeddedRedis(log_dir=workdir / "servers", data_dir=workdir / "redis-data")
    broker.start()
    redis.start()
    env = {"HELM_KAFKA_BOOTSTRAP": broker.bootstrap, "HELM_REDIS_URL": redis.url}
    stack = await asyncio.to_thread(start_stack, workdir, env)
    bus = Bus(KafkaSettings(bootstrap=broker.bootstrap, linger_ms=5), "fault-load")
    await bus.start()
    rig = Rig(
        workdir, broker, redis, stack, bus, Store(RedisSettings(url=redis.url)), Load(bus, rate)
    )
    rig.start_load()
    return rig


async def stop_rig(rig: Rig) -> int:
    rig.stop_load.set()
    await asyncio.gather(*rig.tasks, return_exceptions=True)
    await rig.bus.stop()
    await rig.store.close()
    code = await asyncio.to_thread(rig.stack.stop)
    rig.broker.stop()
    rig.redis.stop()
    return code


def report(fault: str, produced: int, counted: int, lost_reported: int, recover_s: float) -> str:
    duplicates = max(0, counted - produced)
    lost = max(0, produced - counted)
    line = (
        f"{fault}: produced {produced}, counted {counted}, duplicates {duplicates}, "
        f"lost {lost} (reported lost {lost_reported}), recovered in {recover_s:.1f} s"
    )
    REPORTS.append(line)
    return line
