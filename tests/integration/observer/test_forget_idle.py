"""An observer forgets idle agents and loses nothing by it.

With ``idle_forget_s`` at 0 the observer drops every agent from memory as soon as its work is
checkpointed. A stream sent in two halves, with a pause in which every agent is forgotten, must
still end with the windows and drifts of one uninterrupted pass through the rules: each agent's
baselines come back from its checkpoint with its next run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.observer.app import build_app
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

EVENTS, AGENTS = 4_000, 40


async def test_forgotten_agents_keep_their_baselines(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store, tmp_path: Path
) -> None:
    events = stream(AGENTS, EVENTS, seed=5, prefix="idle")
    ref_windows, ref_drifts = replay(events, all_rules())
    settings = ObserverSettings(
        **common(kafka_settings, redis_settings),
        config_file=all_rules_config(tmp_path),
        idle_forget_s=0.0,
    )
    observer = build_app(settings)
    bus = Bus(kafka_settings, "test")
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    drifts: set[str] = set()

    async def keep(d: c.DriftDetected) -> None:
        drifts.add(d.event_id)

    stop = asyncio.Event()
    watcher = bus.consumer([c.DRIFT], None, keep)
    watching = asyncio.create_task(watcher.run(stop))

    def sample(name: str) -> float:
        return observer.registry.get_sample_value(name) or 0.0

    async def counted(n: int) -> bool | None:
        return True if await stored_runs(store) >= n else None

    async def all_forgotten() -> bool | None:
        return True if sample("helm_observer_agents_tracked") == 0 else None

    try:
        async with running(observer):
            await asyncio.wait_for(watcher.ready.wait(), 10)
            half = EVENTS // 2
            await bus.publish_many(c.TELEMETRY, events[:half])
            await eventually(lambda: counted(half), 60, what="the first half checkpointed")
            await eventually(all_forgotten, 30, what="every agent forgotten")
            forgotten = sample("helm_observer_agents_forgotten_total")
            await bus.publish_many(c.TELEMETRY, events[half:])
            await eventually(lambda: counted(EVENTS), 60, what="the second half checkpointed")
            await eventually(lambda: _have(drifts, ref_drifts), 30, what="every drift")
    finally:
        stop.set()
        await watching
        await bus.stop()

    assert forgotten >= AGENTS, "each agent was dropped from memory between the halves"
    assert await stored_windows(store, set(ref_windows)) == ref_windows
    assert drifts == set(ref_drifts)


async def _have(seen: set[str], want: dict[str, tuple[str, str]]) -> bool | None:
    return True if seen >= set(want) else None
