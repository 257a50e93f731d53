"""The in-memory broker restarts (losing every topic and offset): services reconnect, recreate
their topics and go on; what the broker lost is reported as lost by run-id accounting."""

from __future__ import annotations

import asyncio
import time

from helm.embedded import EmbeddedBroker
from tests.faults.rig import AGENTS, Rig, report
from tests.waiting import eventually


async def test_broker_restart(rig: Rig) -> None:
    await eventually(
        lambda: _counted_at_least(rig, 200), 60, 0.2, what="runs counted before the fault"
    )
    port = rig.broker.port
    rig.broker.stop()
    await asyncio.sleep(2)
    rig.broker = EmbeddedBroker(port=port, log_dir=rig.workdir / "servers")
    rig.broker.start()
    back = time.monotonic()
    before = await rig.counted()
    await eventually(
        lambda: _counted_at_least(rig, before + 200), 90, 0.2, what="counting after the restart"
    )
    recovered = time.monotonic() - back
    counted = await rig.settle()
    produced = len(rig.load.acked)
    reported = await _reported_lost(rig)
    report("broker restart", produced, counted, reported, recovered)
    assert counted <= produced, "a run was counted twice"
    lost = produced - counted
    # Every run the broker lost shows as a gap in its instance's numbering; runs the load could
    # not even send show there too.
    assert lost <= reported <= lost + rig.load.failed


async def _counted_at_least(rig: Rig, n: int) -> bool:
    return await rig.counted() >= n


async def _reported_lost(rig: Rig) -> int:
    total = 0
    for agent in AGENTS:
        total += int((await rig.store.get_metrics(agent)).get("runs_lost") or 0)
    return total
