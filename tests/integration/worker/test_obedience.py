"""Pause, resume and every constraint take effect before the worker's next run starts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from helm import contracts as c
from helm.bus import Bus
from helm.config import AgentConfig
from helm.settings import KafkaSettings, RedisSettings
from services.worker.app import WorkerApp, build_app
from services.worker.settings import WorkerSettings
from tests.integration.services import running
from tests.waiting import eventually

AGENT = AgentConfig(
    id="obedient", service="risk-ops", kind="classifier", batch_size=5, run_interval_s=0.05
)


class Runs:
    """Every RunCompleted of the agent, as it arrives."""

    def __init__(self) -> None:
        self.items: list[c.RunCompleted] = []

    async def keep(self, run: c.RunCompleted) -> None:
        if run.agent_id == AGENT.id:
            self.items.append(run)

    def started_after(self, t: float) -> list[c.RunCompleted]:
        return [r for r in self.items if r.ts - r.latency_ms / 1000 > t]


@pytest.fixture
async def setup(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> AsyncIterator[tuple[WorkerApp, Bus, Runs]]:
    settings = WorkerSettings(
        kafka=kafka_settings,
        redis=redis_settings,
        agent=AGENT.id,
        instance_id="o-0",
        ops_port=0,
        offline_delay_ms=5,
    )
    app = build_app(settings, agent_config=AGENT)
    bus = Bus(kafka_settings, "test")
    await bus.start()
    runs = Runs()
    stop = asyncio.Event()
    tap = bus.consumer([c.TELEMETRY], None, runs.keep)
    reader = asyncio.create_task(tap.run(stop))
    try:
        async with running(app):
            assert app.control_consumer is not None
            await asyncio.wait_for(app.control_consumer.ready.wait(), 20)
            await asyncio.wait_for(tap.ready.wait(), 20)
            yield app, bus, runs
    finally:
        stop.set()
        await reader
        await bus.stop()


async def applied(app: WorkerApp, check: object) -> float:
    await eventually(lambda: _true(check), 10, 0.005, what="command applied")
    return time.time()


async def _true(check: object) -> bool:
    return bool(check())  # type: ignore[operator]


async def test_pause_holds_every_run_after_the_one_in_flight_and_resume_restarts(
    setup: tuple[WorkerApp, Bus, Runs],
) -> None:
    app, bus, runs = setup
    await eventually(lambda: _true(lambda: len(runs.items) >= 3), 20, what="runs flowing")
    await bus.publish(c.CONTROL, c.PauseAgent(agent_id=AGENT.id, actor="operator:test"))
    paused_at = await applied(app, lambda: app.state.paused)
    await asyncio.sleep(1.0)
    assert runs.started_after(paused_at) == []
    count = len(runs.items)
    await bus.publish(c.CONTROL, c.ResumeAgent(agent_id=AGENT.id, actor="operator:test"))
    await eventually(
        lambda: _true(lambda: len(runs.items) >= count + 3), 10, what="runs after resume"
    )


async def test_constraints_shape_the_next_run(setup: tuple[WorkerApp, Bus, Runs]) -> None:
    app, bus, runs = setup
    await bus.publish(
        c.CONTROL, c.InjectAnomaly(agent_id=AGENT.id, duration_s=60, malformed_ratio=0.5)
    )
    anomaly_at = await applied(app, lambda: app.state.active_anomaly() is not None)
    await eventually(
        lambda: _true(lambda: len(runs.started_after(anomaly_at)) >= 2), 20, what="anomalous runs"
    )
    big = runs.started_after(anomaly_at)
    assert all(r.batch_size == 40 for r in big)
    assert any(r.malformed > 0 and r.retries > 0 for r in big)

    await bus.publish(
        c.CONTROL,
        c.ConstrainAgent(agent_id=AGENT.id, batch_size=2, max_retries=0, rate_limit_per_min=240),
    )
    limited_at = await applied(app, lambda: app.state.control.constraints.batch_size == 2)
    await eventually(
        lambda: _true(lambda: len(runs.started_after(limited_at)) >= 4), 20, what="constrained runs"
    )
    limited = runs.started_after(limited_at)
    assert all(r.batch_size == 2 and r.retries == 0 for r in limited)
    starts = sorted(r.ts - r.latency_ms / 1000 for r in limited)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.25 * 0.9  # 240 a minute: a run every 0.25 s at most
