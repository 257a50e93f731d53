"""SIGKILL each service in turn while runs flow: each comes back, every acknowledged run is
counted exactly once, nothing is done twice, and no agent is left in a state nobody decided."""

from __future__ import annotations

import os
import signal
import time

from tests.faults.audit import audit
from tests.faults.rig import Rig, report
from tests.waiting import eventually


async def worker_pid(rig: Rig) -> int | None:
    for data in (await rig.store.list_instances("classifier")).values():
        if data.get("alive", True) and data.get("pid"):
            return int(data["pid"])
    return None


async def service_pid(rig: Rig, name: str) -> int | None:
    if name == "worker":
        return await worker_pid(rig)
    return rig.stack.pids().get(name)


async def kill_and_recover(rig: Rig, name: str) -> float:
    """SIGKILL the service; return the seconds until it is back and the pipeline moves."""
    pid = await service_pid(rig, name)
    assert pid, f"no pid for {name}"
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    async def replaced() -> bool:
        now = await service_pid(rig, name)
        return now is not None and now != pid

    await eventually(replaced, 90, 0.2, what=f"{name} replaced after SIGKILL")
    before = await rig.counted()
    await eventually(
        lambda: _counted_at_least(rig, before + 50), 90, 0.2, what=f"runs counted after {name}"
    )
    return time.monotonic() - killed


async def test_sigkill_each_service(rig: Rig) -> None:
    await eventually(
        lambda: _counted_at_least(rig, 200), 60, 0.2, what="runs counted before the faults"
    )
    for name in ("worker", "observer", "governor", "runtime", "gateway"):
        recovered = await kill_and_recover(rig, name)
        counted = await rig.settle()
        produced = len(rig.load.acked)
        report(f"SIGKILL {name}", produced, counted, 0, recovered)
        assert counted == produced, f"after killing {name}: {produced} produced, {counted} counted"
        rig.start_load()
    await rig.settle()
    findings = await audit(rig.bus, rig.store)
    print(findings)
    assert findings["incidents"] > 0 and findings["commands"] > 0, "the governors never acted"
    assert findings["duplicate_incidents_in_log"] == []
    assert findings["duplicate_incidents_on_topic"] == []
    assert findings["duplicate_commands"] == []
    assert findings["undecided_states"] == []


async def _counted_at_least(rig: Rig, n: int) -> bool:
    return await rig.counted() >= n
