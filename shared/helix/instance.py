"""One supervised instance: launched, watched, restarted with back-off, stopped with a deadline.

Restart rules: a crash (any exit the runtime did not ask for) restarts after the current back-off,
which doubles up to ``backoff_max`` and resets after a clean run of ``backoff_reset_after``
seconds. A memory-limit or liveness restart is a crash with a recorded reason; an operator
restart is immediate. ``stop`` sends SIGTERM (or cancels), waits up to the timeout, then kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from helix.backends.base import AgentSpec, Backend, InstanceContext, InstanceHandle
from helix.clock import SYSTEM_CLOCK, Clock
from helix.config import ResourceConfig
from helix.events import EventBus, EventKind

log = logging.getLogger(__name__)


@dataclass
class InstanceStatus:
    """What an operator sees about one instance."""

    instance_id: str
    agent_id: str
    index: int
    state: str = "starting"  # starting, running, backoff, exited, stopping, stopped
    pid: int | None = None
    cpu_percent: float | None = None
    rss_mb: float | None = None
    restart_count: int = 0
    last_exit_code: int | None = None
    last_restart_reason: str | None = None
    backoff_seconds: float = 0.0
    ready: bool = True
    healthy: bool = True
    started_at: float | None = None


class Supervisor:
    def __init__(
        self,
        spec: AgentSpec,
        resources: ResourceConfig,
        ctx: InstanceContext,
        backend: Backend,
        bus: EventBus,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_launch: Callable[[Supervisor], Awaitable[None]] | None = None,
    ) -> None:
        self.spec, self.resources, self.ctx = spec, resources, ctx
        self._backend, self._bus, self._clock, self._on_launch = backend, bus, clock, on_launch
        self.status = InstanceStatus(ctx.instance_id, ctx.agent_id, ctx.index)
        self.handle: InstanceHandle | None = None
        self._stopping = asyncio.Event()
        self._pending: tuple[EventKind, str, bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self._backoff = resources.backoff_initial

    def snapshot(self) -> InstanceStatus:
        return replace(self.status)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self.ctx.instance_id}")

    async def restart(
        self,
        reason: str,
        kind: EventKind = EventKind.INSTANCE_RESTARTED,
        *,
        immediate: bool = False,
    ) -> None:
        """End the current process and start a new one, recording why."""
        if self.handle is None or self._pending is not None or self._stopping.is_set():
            return  # already between processes
        self._pending = (kind, reason, immediate)
        await (self.handle.terminate() if immediate else self.handle.kill())

    async def stop(self, grace: float, force: bool = False) -> None:
        self._stopping.set()
        self.status.state = "stopping"
        if self.handle is not None:
            await (self.handle.kill() if force else self.handle.terminate())
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done and self.handle is not None:
            log.warning("instance %s did not stop in %.1fs; killing", self.ctx.instance_id, grace)
            await self.handle.kill()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            code = await self._one_run()
            if self._stopping.is_set() or not await self._plan_restart(code):
                break
        self.status.state = "stopped" if self._stopping.is_set() else "exited"
        self.status.pid = None
        await self._bus.emit(
            EventKind.INSTANCE_STOPPED,
            self.ctx.agent_id,
            self.ctx.instance_id,
            self.status.state,
            exit_code=self.status.last_exit_code,
        )

    async def _one_run(self) -> int | None:
        started = self._clock.monotonic()
        try:
            self.handle = await self._backend.launch(self.spec, self.ctx)
        except Exception as exc:  # a launch failure is a crash: back off and retry
            log.exception("launching %s failed", self.ctx.instance_id)
            self.status.last_restart_reason = f"launch failed: {exc}"
            return None
        self.status.pid, self.status.state = self.handle.pid, "running"
        self.status.started_at = self._clock.time()
        await self._announce()
        if self._on_launch is not None:
            await self._on_launch(self)
        code = await self.handle.wait()
        self.handle = None
        self.status.last_exit_code, self.status.pid = code, None
        self.status.cpu_percent = self.status.rss_mb = None
        if self._clock.monotonic() - started >= self.resources.backoff_reset_after:
            self._backoff = self.resources.backoff_initial  # it ran cleanly for long enough
        return code

    async def _announce(self) -> None:
        s = self.status
        if s.restart_count == 0:
            await self._bus.emit(EventKind.INSTANCE_STARTED, s.agent_id, s.instance_id, pid=s.pid)
            return
        kind = self._restart_kind
        await self._bus.emit(
            kind,
            s.agent_id,
            s.instance_id,
            s.last_restart_reason or "",
            pid=s.pid,
            restart_count=s.restart_count,
            backoff=s.backoff_seconds,
        )

    async def _plan_restart(self, code: int | None) -> bool:
        requested = self._pending
        kind, reason, immediate = requested or (
            EventKind.INSTANCE_RESTARTED,
            self.status.last_restart_reason if code is None else f"exited with code {code}",
            False,
        )
        self._pending = None
        await self._bus.emit(
            EventKind.INSTANCE_EXITED,
            self.ctx.agent_id,
            self.ctx.instance_id,
            reason or "",
            exit_code=code,
        )
        policy = self.resources.restart_policy
        if policy == "never" or (policy == "on-failure" and code == 0 and requested is None):
            return False
        delay = 0.0 if immediate else self._backoff
        if not immediate:
            self._backoff = min(self._backoff * 2, self.resources.backoff_max)
        self._restart_kind = kind
        s = self.status
        s.restart_count, s.last_restart_reason = s.restart_count + 1, reason
        s.backoff_seconds, s.state = delay, "backoff"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return not self._stopping.is_set()

    _restart_kind: EventKind = EventKind.INSTANCE_RESTARTED
