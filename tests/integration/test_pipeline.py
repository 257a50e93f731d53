"""One drift handled end to end by the real services on the real broker and Redis."""

from __future__ import annotations

import asyncio
import time

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.state import AgentState, Anomaly
from helm.store import Store
from services.governor.app import build_app as governor
from services.governor.settings import GovernorSettings
from services.observer.app import build_app as observer
from services.observer.settings import ObserverSettings
from services.runtime.app import build_app as runtime
from services.runtime.settings import RuntimeSettings
from services.worker.app import build_app as worker
from services.worker.settings import WorkerSettings
from tests.integration.services import common, running
from tests.waiting import eventually


async def test_an_injected_anomaly_is_detected_paused_recovered_and_logged(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> None:
    kw = common(kafka_settings, redis_settings)
    apps = (
        runtime(RuntimeSettings(**kw)),
        observer(ObserverSettings(**kw)),
        governor(GovernorSettings(**kw)),
        worker(
            WorkerSettings(**kw, agent="classifier", instance_id="classifier-0", offline_delay_ms=0)
        ),
    )
    store = Store(redis_settings)
    bus = Bus(kafka_settings, "test")
    await bus.start()
    try:
        async with running(*apps):
            await eventually(lambda: _runs_at_least(store, 8), 30, what="a warm baseline")
            control = apps[3].control_consumer
            assert control is not None
            await asyncio.wait_for(control.ready.wait(), 20)
            # As the gateway does: the desired anomaly in Redis (the truth), then the fast path.
            inject = c.InjectAnomaly(agent_id="classifier", duration_s=5, actor="operator:test")
            await store.set_anomaly("classifier", Anomaly(until=inject.ts + inject.duration_s))
            await bus.publish(c.CONTROL, inject)
            seen = await _states(store, {AgentState.PAUSED, AgentState.RECOVERING}, 40)
            assert seen[0] == AgentState.PAUSED
            await eventually(lambda: _state_is(store, AgentState.HEALTHY), 40, what="healthy again")
        kinds = [i.kind for _, i in reversed(await store.incidents(50))]
    finally:
        await bus.stop()
        await store.close()
    assert kinds[0] == "operator:InjectAnomaly"
    assert kinds.index("paused") < kinds.index("recovering") < kinds.index("recovered")


async def _runs_at_least(store: Store, n: int) -> bool:
    return int((await store.get_metrics("classifier")).get("runs") or 0) >= n


async def _state_is(store: Store, state: AgentState) -> bool:
    return (await store.get_status("classifier")).state == state


async def _states(store: Store, wanted: set[AgentState], deadline_s: float) -> list[AgentState]:
    seen: list[AgentState] = []

    async def probe() -> bool:
        st = (await store.get_status("classifier")).state
        if st in wanted and (not seen or seen[-1] != st):
            seen.append(st)
        return wanted <= set(seen)

    start = time.monotonic()
    await eventually(probe, deadline_s, 0.02, what=f"states {wanted}")
    assert time.monotonic() - start < deadline_s
    return seen
