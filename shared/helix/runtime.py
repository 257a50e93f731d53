"""AgentRuntime: keeps each registered agent's instances running, healthy and within limits.

The runtime reconciles each agent's desired instance count with its supervised instances,
bounded by ``max_workers`` across all agents. A monitor loop samples CPU and memory per instance
and restarts any instance over ``memory_limit_mb``. A health loop runs the agent's checks per
instance: liveness or startup failure restarts the instance, readiness sets its ``ready`` flag,
and every change is an event. Events go to ``on_event`` callbacks and ``events()`` streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from helix.agents import AgentStatus, ManagedAgent
from helix.backends import AgentSpec, Backend, InProcessBackend, ProcessBackend
from helix.clock import SYSTEM_CLOCK, Clock
from helix.config import ResourceConfig, RuntimeConfig
from helix.events import EventBus, EventCallback, EventKind, RuntimeEvent
from helix.health import CheckType, HealthCheck, HealthChecker, HealthStatus, HealthTransition
from helix.instance import Supervisor
from helix.scaling import ScalingMetrics

log = logging.getLogger(__name__)


class AgentRuntime:
    """Lifecycle, health and resource enforcement for agents' instances."""

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        *,
        backend: Backend | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.backend: Backend = backend or (
            InProcessBackend() if self.config.backend == "inprocess" else ProcessBackend()
        )
        self._clock = clock
        self._bus = EventBus(clock)
        self._health = HealthChecker(clock, on_transition=self._on_health)
        self._agents: dict[str, ManagedAgent] = {}
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._shutdown_requested = asyncio.Event()
        if self.config.hot_reload:
            log.warning("hot_reload is not supported; restart_agent reloads an agent's code")

    # events -----------------------------------------------------------------------------
    def on_event(self, callback: EventCallback) -> None:
        """Call ``callback(RuntimeEvent)`` (sync or async) for every runtime event."""
        self._bus.subscribe(callback)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """An async stream of runtime events from now on."""
        return self._bus.stream()

    # registration and lifecycle -------------------------------------------------------------
    async def register_agent(
        self,
        agent_id: str,
        agent_callable: Callable[..., Any] | str | None = None,
        *,
        command: Sequence[str] | None = None,
        resources: ResourceConfig | None = None,
        health_checks: Sequence[HealthCheck] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """Register what runs as ``agent_id``: a callable, "module:function", or an argv command."""
        if (agent_callable is None) == (command is None):
            raise ValueError("give exactly one of agent_callable or command")
        resources = resources or ResourceConfig()
        spec = AgentSpec(
            agent_id,
            command=list(command) if command else None,
            target=agent_callable if isinstance(agent_callable, str) else None,
            function=agent_callable if callable(agent_callable) else None,
            env={**resources.env, **(env or {})},
        )
        self._agents[agent_id] = ManagedAgent(spec, resources, list(health_checks))

    async def start(self) -> None:
        """Start the monitor and health loops (idempotent)."""
        if self._loops:
            return
        self._stop.clear()
        self._loops = [
            asyncio.create_task(self._monitor(), name="helix-monitor"),
            asyncio.create_task(self._health.run(self._stop), name="helix-health"),
        ]

    async def start_agent(self, agent_id: str) -> int:
        """Start ``min_instances`` instances; return how many are starting."""
        agent = self._agent(agent_id)
        agent.running = True
        return await self._reconcile(
            agent, max(agent.desired, agent.resources.min_instances), "start"
        )

    async def scale_agent(self, agent_id: str, instances: int, reason: str = "requested") -> int:
        """Run ``instances`` (clamped to [min, max] and to max_workers); return the new count."""
        agent = self._agent(agent_id)
        target = min(max(instances, agent.resources.min_instances), agent.resources.max_instances)
        return await self._reconcile(agent, target, reason)

    async def stop_agent(self, agent_id: str, force: bool = False) -> None:
        """Stop every instance (SIGTERM then kill after shutdown_timeout; kill at once if force)."""
        agent = self._agent(agent_id)
        agent.running, agent.desired = False, 0
        await self._stop_supervisors(list(agent.supervisors.values()), force)
        agent.supervisors.clear()

    async def restart_agent(self, agent_id: str) -> None:
        """Restart every instance now (no back-off)."""
        for sup in list(self._agent(agent_id).supervisors.values()):
            await sup.restart("restart requested", immediate=True)

    async def get_agent_status(self, agent_id: str) -> AgentStatus:
        return self._agent(agent_id).status()

    async def list_agents(self) -> list[AgentStatus]:
        return [a.status() for a in self._agents.values()]

    def scaling_metrics(self, agent_id: str) -> ScalingMetrics:
        """Measured per-instance averages for the scaler (CPU %, memory % of the limit)."""
        return self._agent(agent_id).scaling_metrics()

    async def shutdown(self) -> None:
        """Stop every agent within shutdown_timeout, then the runtime's own loops."""
        await asyncio.gather(*(self.stop_agent(a) for a in list(self._agents)))
        self._stop.set()
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops = []

    def request_shutdown(self) -> None:
        self._shutdown_requested.set()

    async def wait_for_shutdown(self) -> None:
        """Wait for SIGTERM or SIGINT (or ``request_shutdown``), then ``shutdown``."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._shutdown_requested.set)
        try:
            await self._shutdown_requested.wait()
            await self.shutdown()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    # internals ------------------------------------------------------------------------------
    def _agent(self, agent_id: str) -> ManagedAgent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise KeyError(f"no agent registered as {agent_id!r}") from None

    def _capacity(self) -> int:
        return self.config.max_workers - sum(len(a.supervisors) for a in self._agents.values())

    async def _reconcile(self, agent: ManagedAgent, target: int, reason: str) -> int:
        before = len(agent.supervisors)
        grow = min(max(0, target - before), max(0, self._capacity()))
        for index in agent.free_indices(grow):
            sup = Supervisor(
                agent.spec,
                agent.resources,
                agent.context(index),
                self.backend,
                self._bus,
                clock=self._clock,
                on_launch=self._launched,
            )
            agent.supervisors[index] = sup
            sup.start()
        doomed = sorted(agent.supervisors)[target:] if target < before else []
        await self._stop_supervisors([agent.supervisors.pop(i) for i in doomed], force=False)
        agent.desired = len(agent.supervisors)
        if agent.desired != before or agent.desired != target:
            note = reason if agent.desired == target else f"{reason}; limited by max_workers"
            await self._bus.emit(
                EventKind.SCALED,
                agent.spec.agent_id,
                None,
                note,
                before=before,
                after=agent.desired,
                requested=target,
            )
        return agent.desired

    async def _stop_supervisors(self, sups: list[Supervisor], force: bool) -> None:
        for sup in sups:
            self._health.remove_target(sup.ctx.instance_id)
        timeout = self.config.shutdown_timeout
        await asyncio.gather(*(s.stop(timeout, force) for s in sups))

    async def _launched(self, sup: Supervisor) -> None:
        checks = self._agents[sup.ctx.agent_id].health_checks
        self._health.remove_target(sup.ctx.instance_id)
        for check in checks:
            self._health.add(sup.ctx.instance_id, check, sup.status)
        sup.status.ready = not any(c.check_type is CheckType.READINESS for c in checks)
        sup.status.healthy = True

    async def _on_health(self, change: HealthTransition) -> None:
        sup = self._supervisor(change.target_id)
        if sup is None:
            return
        bad = change.new is HealthStatus.UNHEALTHY
        await self._bus.emit(
            EventKind.HEALTH_CHANGED,
            sup.ctx.agent_id,
            sup.ctx.instance_id,
            f"{change.check_name}: {change.old} → {change.new}",
            check=change.check_name,
            check_type=str(change.check_type),
            status=str(change.new),
            error=change.error,
        )
        if change.check_type is CheckType.READINESS:
            sup.status.ready = change.new is HealthStatus.HEALTHY
            await self._bus.emit(
                EventKind.READINESS_CHANGED,
                sup.ctx.agent_id,
                sup.ctx.instance_id,
                change.error or "",
                ready=sup.status.ready,
            )
        elif change.check_type in (CheckType.LIVENESS, CheckType.STARTUP) and bad:
            sup.status.healthy = False
            await sup.restart(
                f"{change.check_type} check {change.check_name!r} failed: {change.error}"
            )

    def _supervisor(self, instance_id: str) -> Supervisor | None:
        for agent in self._agents.values():
            for sup in agent.supervisors.values():
                if sup.ctx.instance_id == instance_id:
                    return sup
        return None

    async def _monitor(self) -> None:
        while not self._stop.is_set():
            for agent in list(self._agents.values()):
                for sup in list(agent.supervisors.values()):
                    await self._sample(agent, sup)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.monitor_interval)

    async def _sample(self, agent: ManagedAgent, sup: Supervisor) -> None:
        handle = sup.handle
        sample = handle.sample() if handle is not None else None
        if sample is None:
            return
        sup.status.cpu_percent, sup.status.rss_mb = sample.cpu_percent, sample.rss_mb
        limit = agent.resources.memory_limit_mb
        if limit is not None and sample.rss_mb > limit:
            reason = f"memory limit exceeded: rss {sample.rss_mb:.0f} MB > limit {limit:g} MB"
            await sup.restart(reason, EventKind.INSTANCE_OOM_RESTARTED)
