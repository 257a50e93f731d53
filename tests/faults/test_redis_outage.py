"""Redis stops and comes back: services keep running, the gateway says 503 meanwhile, nothing
acknowledged before the outage is lost, and counting resumes."""

from __future__ import annotations

import asyncio
import time

import httpx

from helm.embedded import EmbeddedRedis
from tests.faults.rig import Rig, report
from tests.waiting import eventually


async def test_redis_outage(rig: Rig) -> None:
    await eventually(
        lambda: _counted_at_least(rig, 200), 60, 0.2, what="runs counted before the fault"
    )
    pids = rig.stack.pids()
    port, data = rig.redis.port, rig.redis.data_dir
    rig.redis.stop()  # a clean stop: the append-only file is complete
    async with httpx.AsyncClient(base_url=rig.stack.base_url, timeout=10) as http:

        async def unavailable() -> httpx.Response | None:
            r = await http.get("/state")
            return r if r.status_code == 503 else None

        down = await eventually(
            unavailable, 20, 0.2, what="503 from the gateway while Redis is down"
        )
        assert "redis" in down.json()["error"].lower()
        await asyncio.sleep(3)  # an outage long enough for every loop to notice
        rig.redis = EmbeddedRedis(port=port, data_dir=data, log_dir=rig.workdir / "servers")
        rig.redis.start()
        back = time.monotonic()

        async def serving() -> bool:
            return (await http.get("/state")).status_code == 200

        await eventually(serving, 30, 0.2, what="the gateway serving again")
        before = await rig.counted()
        await eventually(
            lambda: _counted_at_least(rig, before + 100), 60, 0.2, what="counting again"
        )
        recovered = time.monotonic() - back
    assert rig.stack.pids() == pids, "a service exited during the Redis outage"
    counted = await rig.settle()
    produced = len(rig.load.acked)
    report("redis outage", produced, counted, 0, recovered)
    assert counted == produced


async def _counted_at_least(rig: Rig, n: int) -> bool:
    return await rig.counted() >= n
