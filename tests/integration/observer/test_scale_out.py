"""Two observers in one group split the partitions and together detect exactly what one does.

The pair goes through two rebalances mid-stream (the second observer joins, then leaves), while a
lone observer reads the same events on its own topics; both must end with the windows and drift
ids of the reference replay, and each of the pair must have done part of the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.observer.app import ObserverApp, build_app
from services.observer.settings import ObserverSettings
from tests.integration.observer.streams import (
    all_rules,
    all_rules_config,
    replay,
    stored_runs,
    stored_windows,
    stream,
)
from tests.integration.services import common, running
from tests.waiting import eventually


class Drifts:
    """Every DriftDetected on a stack's helm.drift, from the beginning."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.bus = Bus(kafka, "test-drifts")
        self.ids: set[str] = set()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _keep(self, drift: c.DriftDetected) -> None:
        self.ids.add(drift.event_id)

    def seen_all(self, wanted: set[str]) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return self.ids >= wanted

        return probe

    async def __aenter__(self) -> Drifts:
        self.task = asyncio.create_task(
            self.bus.consumer([c.DRIFT], None, self._keep).run(self.stop)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task


def handled(registry: CollectorRegistry) -> float:
    """Runs an observer has handled, from its own Prometheus counters."""
    return sum(
        s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "helm_observer_runs_total"
    )


async def test_two_observers_in_one_group_detect_exactly_what_one_does(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, test_id: str, tmp_path: Path
) -> None:
    events = stream(agents=40, runs=3000, seed=3, prefix="scale")
    ref_windows, ref_drifts = replay(events, all_rules())
    rules = {rule for _, rule in ref_drifts.values()}
    assert {"tokens_spike", "low_confidence", "repeated_retries", "latency_spike"} <= rules
    config = all_rules_config(tmp_path)
    lone_k = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}1."})
    lone_r = redis_settings.model_copy(update={"prefix": f"{redis_settings.prefix}1:"})

    def observer(k: KafkaSettings, r: RedisSettings, group: str) -> ObserverApp:
        settings = ObserverSettings(**common(k, r), group=group, config_file=config)
        return build_app(settings)

    first, second = observer(kafka_settings, redis_settings, f"obs-{test_id}"), None
    lone = observer(lone_k, lone_r, f"lone-{test_id}")
    second = observer(kafka_settings, redis_settings, f"obs-{test_id}")
    pair_bus, lone_bus = Bus(kafka_settings, "test"), Bus(lone_k, "test")
    stores = Store(redis_settings), Store(lone_r)
    thirds = [events[:1000], events[1000:2000], events[2000:]]
    try:
        await pair_bus.start()
        await lone_bus.start()
        async with running(lone, first), Drifts(kafka_settings) as pair, Drifts(lone_k) as one:
            await lone_bus.publish_many(c.TELEMETRY, events)
            await pair_bus.publish_many(c.TELEMETRY, thirds[0])
            await _counted(stores[0], 1000)
            async with running(second):
                before = handled(first.registry)
                await _trickle(pair_bus, thirds[1])
                await eventually(lambda: _did_work(second), 30, what="the second observer working")
                await _counted(stores[0], 2000)
            assert handled(first.registry) > before, "the first observer kept some partitions"
            await pair_bus.publish_many(c.TELEMETRY, thirds[2])
            for store in stores:
                await _counted(store, len(events))
            for tap in (pair, one):
                await eventually(tap.seen_all(set(ref_drifts)), 20, what="every drift published")
        for store in stores:
            assert await stored_windows(store, set(ref_windows)) == ref_windows
        assert pair.ids == one.ids == set(ref_drifts)
    finally:
        await pair_bus.stop()
        await lone_bus.stop()
        for store in stores:
            await store.close()


async def _counted(store: Store, n: int) -> None:
    async def probe() -> bool:
        return await stored_runs(store) >= n

    await eventually(probe, 60, 0.1, what=f"{n} runs checkpointed")


async def _trickle(bus: Bus, events: list[Any]) -> None:
    """Publish in small slices, so the stream is still flowing while the group rebalances."""
    for i in range(0, len(events), 50):
        await bus.publish_many(c.TELEMETRY, events[i : i + 50])
        await asyncio.sleep(0.1)


async def _did_work(app: ObserverApp) -> bool:
    return handled(app.registry) > 0
