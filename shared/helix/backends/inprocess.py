"""In-process backend: every instance is an asyncio task in this process (tests, notebooks).

Instances share this process's pid and memory, so no per-instance CPU or memory is reported and
memory limits cannot apply; use the process backend for isolation.
"""

from __future__ import annotations

import asyncio
import logging
import os

from helix.backends.base import AgentSpec, InstanceContext, Sample, resolve, run_entry

log = logging.getLogger(__name__)


class TaskHandle:
    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self._task, self._stop = task, stop

    @property
    def pid(self) -> int | None:
        return os.getpid()

    async def wait(self) -> int:
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise  # we were cancelled ourselves, not the instance
            return -15
        except Exception:
            log.exception("in-process instance failed")
            return 1
        return 0

    async def terminate(self) -> None:
        self._stop.set()  # a hosted handler returns; a running body is cancelled below
        if not self._task.done():
            self._task.cancel()

    async def kill(self) -> None:
        self._task.cancel()

    def sample(self) -> Sample | None:
        return None


class InProcessBackend:
    name = "inprocess"

    async def launch(self, spec: AgentSpec, ctx: InstanceContext) -> TaskHandle:
        fn = spec.function or (resolve(spec.target) if spec.target else None)
        if fn is None:
            raise ValueError(f"agent {spec.agent_id!r}: the in-process backend runs callables only")
        stop = asyncio.Event()
        task = asyncio.create_task(run_entry(fn, ctx, stop), name=ctx.instance_id)
        return TaskHandle(task, stop)
