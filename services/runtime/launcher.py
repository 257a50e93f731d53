"""How the runtime starts a worker: Helix's process backend, tied to the runtime's life.

Two differences from ``helix.ProcessBackend``, both so that a runtime that dies (SIGKILL, OOM)
takes its workers with it and can be restarted at once:
- on Linux each worker gets ``PR_SET_PDEATHSIG`` = SIGTERM: when the runtime dies, its workers
  drain and stop by themselves (a successor also ends any it finds, see ``orphans``);
- a worker's output goes through the runtime (relayed line by line to its stdout), never straight
  to the runtime's own stdout: a supervisor waiting for the runtime's output to end is not kept
  waiting by workers that outlive it.
Everything else (own process group, Helix's instance env, CPU and memory sampling) is Helix's.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable

from helix.backends.base import AgentSpec, InstanceContext, instance_env
from helix.backends.process import ProcessBackend, ProcessHandle, command_for

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook: SIGTERM this child when ``parent`` dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


async def _relay(stream: asyncio.StreamReader) -> None:
    out = sys.stdout.buffer
    async for line in stream:
        out.write(line)
        out.flush()


class WorkerLauncher(ProcessBackend):
    """The process backend for workers (see the module docstring)."""

    def __init__(self) -> None:
        self._relays: set[asyncio.Task[None]] = set()

    async def launch(self, spec: AgentSpec, ctx: InstanceContext) -> ProcessHandle:
        proc = await asyncio.create_subprocess_exec(
            *command_for(spec),
            env={**os.environ, **spec.env, **instance_env(ctx)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, and no terminal signals
            preexec_fn=_die_with(os.getpid()),
        )
        assert proc.stdout is not None
        relay = asyncio.create_task(_relay(proc.stdout), name=f"output-{ctx.instance_id}")
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        return ProcessHandle(proc)
