"""Process backend: every instance is its own OS process, in its own process group.

The process group lets stop and kill reach anything the instance spawned, and leftovers of the
group are killed once the instance exits, so no orphan outlives its instance. CPU and resident
memory are sampled with psutil over the instance process and all its descendants.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from asyncio.subprocess import Process

import psutil

from helix.backends.base import AgentSpec, InstanceContext, Sample, importable_name, instance_env


def command_for(spec: AgentSpec) -> list[str]:
    if spec.command:
        return list(spec.command)
    target = spec.target or (importable_name(spec.function) if spec.function else None)
    if target is None:
        raise ValueError(
            f"agent {spec.agent_id!r}: the process backend needs a command, a 'module:function' "
            "or a callable importable by name (not a lambda, closure or __main__ function)"
        )
    return [sys.executable, "-m", "helix.backends.child", target]


class ProcessHandle:
    def __init__(self, proc: Process) -> None:
        self._proc = proc
        self._ps: psutil.Process | None = None
        self._children: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    async def wait(self) -> int:
        code = await self._proc.wait()
        self._signal_group(signal.SIGKILL)  # reap whatever the instance left in its group
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    async def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def sample(self) -> Sample | None:
        try:
            if self._ps is None:
                self._ps = psutil.Process(self._proc.pid)
                self._ps.cpu_percent()  # the first reading only sets the baseline
            tree = [self._ps, *self._track_children()]
            cpu = sum(_safe(lambda p=p: p.cpu_percent()) for p in tree)
            rss = sum(_safe(lambda p=p: p.memory_info().rss) for p in tree)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        return Sample(cpu, rss / (1024 * 1024))

    def _track_children(self) -> list[psutil.Process]:
        assert self._ps is not None
        # Keep the same psutil objects between samples: cpu_percent is measured since the last call.
        current = {c.pid: c for c in self._ps.children(recursive=True)}
        self._children = {pid: self._children.get(pid, c) for pid, c in current.items()}
        return list(self._children.values())


def _safe(read: object) -> float:
    try:
        return float(read())  # type: ignore[operator]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0


class ProcessBackend:
    name = "process"

    async def launch(self, spec: AgentSpec, ctx: InstanceContext) -> ProcessHandle:
        env = {**os.environ, **spec.env, **instance_env(ctx)}
        proc = await asyncio.create_subprocess_exec(
            *command_for(spec),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group, and no terminal signals
        )
        return ProcessHandle(proc)
