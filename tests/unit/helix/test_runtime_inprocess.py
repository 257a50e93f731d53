"""The runtime acts on health: liveness failure restarts, readiness failure takes out of work."""

from __future__ import annotations

import asyncio

from helix import (
    AgentRuntime,
    CheckType,
    EventKind,
    HealthCheck,
    InstanceStatus,
    ResourceConfig,
    RuntimeConfig,
    RuntimeEvent,
)
from tests.waiting import eventually


async def body() -> None:
    await asyncio.Event().wait()


async def test_liveness_restarts_and_readiness_gates_work() -> None:
    alive, ready = {"x": True}, {"x": True}
    events: list[RuntimeEvent] = []

    async def live(instance: InstanceStatus) -> bool:
        return alive["x"]

    async def is_ready() -> bool:
        return ready["x"]

    checks = [
        HealthCheck("live", live, CheckType.LIVENESS, interval=0.02, failure_threshold=2),
        HealthCheck("ready", is_ready, CheckType.READINESS, interval=0.02, failure_threshold=1),
    ]
    rt = AgentRuntime(RuntimeConfig(backend="inprocess", max_workers=4))
    rt.on_event(events.append)
    await rt.register_agent(
        "a",
        body,
        resources=ResourceConfig(min_instances=1, backoff_initial=0.01),
        health_checks=checks,
    )
    await rt.start()
    await rt.start_agent("a")
    try:

        async def ready_count(n: int) -> bool:
            return (await rt.get_agent_status("a")).ready_instances == n

        await eventually(lambda: ready_count(1), what="ready")
        ready["x"] = False
        await eventually(lambda: ready_count(0), what="out of work")
        ready["x"] = True
        await eventually(lambda: ready_count(1), what="back in work")
        alive["x"] = False

        async def restarted() -> bool:
            return (await rt.get_agent_status("a")).restart_count >= 1

        await eventually(restarted, what="liveness restart")
        alive["x"] = True
        reason = (await rt.get_agent_status("a")).instances[0].last_restart_reason
        assert reason is not None and "liveness check 'live' failed" in reason
        assert any(e.kind is EventKind.HEALTH_CHANGED for e in events)
    finally:
        await rt.shutdown()
