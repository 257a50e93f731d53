"""A worker that hangs (SIGSTOP): its heartbeats stop, the runtime marks it dead and replaces it."""

from __future__ import annotations

import os
import signal
import time

import psutil

from tests.faults.rig import Rig, report
from tests.faults.test_kill_services import worker_pid
from tests.waiting import eventually


async def test_hung_worker_is_replaced(rig: Rig) -> None:
    pid = await eventually(lambda: worker_pid(rig), 60, 0.2, what="a classifier worker")
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()

    async def replaced() -> bool:
        now = await worker_pid(rig)
        return now is not None and now != pid

    await eventually(replaced, 90, 0.2, what="the hung worker replaced")
    recovered = time.monotonic() - stopped
    kinds = [
        i.kind for _, i in await rig.store.incidents(500) if i.scope_id.startswith("classifier")
    ]
    assert "instance_dead" in kinds
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    counted = await rig.settle()
    report("SIGSTOP worker", len(rig.load.acked), counted, 0, recovered)
    assert counted == len(rig.load.acked)
