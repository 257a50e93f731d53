"""The process backend with real processes: isolation, crash back-off, memory limit, shutdown."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from helix import AgentRuntime, EventKind, ResourceConfig, RuntimeConfig, RuntimeEvent
from tests.waiting import eventually

FAST = ResourceConfig(
    min_instances=2, max_instances=4, backoff_initial=0.2, backoff_max=5, backoff_reset_after=60
)


@pytest.fixture
async def runtime() -> AsyncIterator[AgentRuntime]:
    rt = AgentRuntime(
        RuntimeConfig(backend="process", max_workers=5, shutdown_timeout=3, monitor_interval=0.2)
    )
    await rt.start()
    yield rt
    await rt.shutdown()


async def running_pids(rt: AgentRuntime, agent: str, n: int) -> list[int] | None:
    status = await rt.get_agent_status(agent)
    pids = [i.pid for i in status.instances if i.state == "running" and i.pid]
    return pids if len(pids) == n else None


async def test_instances_are_separate_processes_that_know_who_they_are(
    runtime: AgentRuntime, tmp_path: Path
) -> None:
    script = (
        "import os, pathlib, time; pathlib.Path(os.environ['OUT'], "
        "os.environ['HELIX_INSTANCE_ID']).write_text(os.environ['HELIX_AGENT_ID']); "
        "time.sleep(600)"
    )
    await runtime.register_agent(
        "echo", command=[sys.executable, "-c", script], resources=FAST, env={"OUT": str(tmp_path)}
    )
    await runtime.start_agent("echo")
    pids = await eventually(lambda: running_pids(runtime, "echo", 2), what="two pids")
    assert len(set(pids)) == 2 and os.getpid() not in pids
    await eventually(lambda: _files(tmp_path, 2), what="identity files")
    assert _identities(tmp_path) == {
        "echo-0": "echo",
        "echo-1": "echo",
    }


def _identities(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in path.iterdir()}


async def _files(path: Path, n: int) -> bool:
    return len(_identities(path)) == n


async def test_sigkilled_instance_restarts_with_growing_back_off(runtime: AgentRuntime) -> None:
    events: list[RuntimeEvent] = []
    runtime.on_event(events.append)
    await runtime.register_agent("idle", "tests.integration.helix.workloads:idle", resources=FAST)
    await runtime.start_agent("idle")
    for kill in range(3):
        pids = await eventually(lambda: running_pids(runtime, "idle", 2), what="two running")
        status = await runtime.get_agent_status("idle")
        victim = next(i for i in status.instances if i.index == 0)
        os.kill(victim.pid or 0, signal.SIGKILL)

        async def restarted(expected: int = kill + 1, old: list[int] = pids) -> bool:
            s = (await runtime.get_agent_status("idle")).instances[0]
            return s.restart_count == expected and s.state == "running" and s.pid not in old

        await eventually(restarted, what=f"restart {kill + 1}")
    restarts = [e for e in events if e.kind is EventKind.INSTANCE_RESTARTED]
    assert [e.detail["backoff"] for e in restarts] == [0.2, 0.4, 0.8]
    assert all(e.instance_id == "idle-0" and "-9" in e.reason for e in restarts)
    status = await runtime.get_agent_status("idle")
    assert status.instances[0].last_exit_code == -signal.SIGKILL
    assert status.instances[1].restart_count == 0


async def test_instance_over_its_memory_limit_is_restarted_with_the_reason(
    runtime: AgentRuntime,
) -> None:
    events: list[RuntimeEvent] = []
    runtime.on_event(events.append)
    hog = ResourceConfig(min_instances=1, memory_limit_mb=100, backoff_initial=0.2)
    await runtime.register_agent("hog", "tests.integration.helix.workloads:hog", resources=hog)
    await runtime.start_agent("hog")

    async def oom_restarted() -> list[RuntimeEvent]:
        return [e for e in events if e.kind is EventKind.INSTANCE_OOM_RESTARTED]

    (event, *_) = await eventually(oom_restarted, deadline_s=20, what="an OOM restart")
    assert "memory limit exceeded" in event.reason and "limit 100 MB" in event.reason
    status = (await runtime.get_agent_status("hog")).instances[0]
    assert status.restart_count >= 1
    assert status.last_restart_reason is not None and "memory" in status.last_restart_reason


async def test_shutdown_leaves_no_child_behind() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # e.g. the test Redis
    rt = AgentRuntime(RuntimeConfig(backend="process", max_workers=5, shutdown_timeout=2))
    stubborn = [
        sys.executable,
        "-c",
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        "time.sleep(600)",
    ]
    await rt.register_agent("stubborn", command=stubborn, resources=FAST)
    await rt.register_agent("idle", "tests.integration.helix.workloads:idle", resources=FAST)
    await rt.start()
    await rt.start_agent("stubborn")
    await rt.start_agent("idle")
    await eventually(lambda: running_pids(rt, "idle", 2), what="idle running")
    await eventually(lambda: _descendants(before, 6), what="instances and grandchildren")
    await rt.shutdown()
    assert await _descendants(before, 0) == []


async def _descendants(before: set[int], n: int) -> list[psutil.Process] | None:
    found = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    return found if len(found) == n else None


async def test_max_workers_bounds_instances(runtime: AgentRuntime) -> None:
    await runtime.register_agent(
        "idle",
        "tests.integration.helix.workloads:idle",
        resources=ResourceConfig(min_instances=1, max_instances=10),
    )
    await runtime.start_agent("idle")
    assert await runtime.scale_agent("idle", 8) == 5
    await eventually(lambda: running_pids(runtime, "idle", 5), what="five running")
    assert await runtime.scale_agent("idle", 2) == 2
    await eventually(lambda: running_pids(runtime, "idle", 2), what="two running")
