"""The worker processes the runtime owns, through Helix's ``AgentRuntime`` (process backend).

Guarantees:
- every agent the runtime runs (see ``desired``) has between its min and max instances, each an
  OS process ``python -m services.worker`` with ``HELIX_AGENT_ID`` / ``HELIX_INSTANCE_ID`` and the
  runtime's broker, Redis and configuration, and any free ops port (registered in Redis);
- an instance whose heartbeats stop for ``heartbeat_timeout_s`` (or never start within
  ``startup_grace_s``) fails Helix's liveness check: it is killed and replaced; an instance
  without a fresh heartbeat saying ``running`` or ``probing`` is not ready;
- above its memory limit an instance is killed and restarted by Helix, with the reason;
- every instance's record in Redis (process and heartbeat together) is rewritten at each
  ``sync``; records of instances that no longer exist are removed;
- ``start`` first ends the workers a killed predecessor left behind; ``shutdown`` drains every
  worker (SIGTERM, then SIGKILL after ``worker_grace_s``) and leaves none behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from helix import (
    AgentRuntime,
    AgentStatus,
    CheckType,
    EventKind,
    HealthCheck,
    InstanceStatus,
    RuntimeConfig,
    RuntimeEvent,
)
from helm import contracts as c
from helm.bus import TRANSIENT
from helm.runner import sleep_or_stop
from helm.store import Store
from services.runtime import orphans
from services.runtime.desired import WorkerSpec, importable, worker_env
from services.runtime.handlers import HeartbeatBook
from services.runtime.incidents import LIVENESS_CHECK, incident_for
from services.runtime.launcher import WorkerLauncher
from services.runtime.metrics import RuntimeMetrics
from services.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)

Report = Callable[[c.IncidentRecorded], Awaitable[None]]
HOST = socket.gethostname()


class Fleet:
    def __init__(
        self,
        settings: RuntimeSettings,
        store: Store,
        book: HeartbeatBook,
        metrics: RuntimeMetrics,
        report: Report,
        runtime: AgentRuntime | None = None,
    ) -> None:
        self.settings, self.store, self.book, self.metrics = settings, store, book, metrics
        self.report = report
        self.runtime = runtime or AgentRuntime(
            RuntimeConfig(
                max_workers=settings.max_workers, shutdown_timeout=settings.worker_grace_s
            ),
            backend=WorkerLauncher(),
        )
        self.specs: dict[str, WorkerSpec] = {}
        self.pids: dict[str, int] = {}
        self.env = worker_env(settings, os.getcwd())
        self.events: asyncio.Queue[RuntimeEvent] = asyncio.Queue(maxsize=1000)
        self.runtime.on_event(self._enqueue)
        self._unrunnable: set[tuple[str, str]] = set()

    def owns(self, agent_id: str, instance_id: str) -> bool:
        """Whether the instance is (or was) one of this runtime's: ``<agent>-<index>``."""
        index = instance_id.removeprefix(f"{agent_id}-")
        return agent_id in self.specs and index != instance_id and index.isdigit()

    async def start(self) -> None:
        await orphans.reap(self.store, HOST, self.settings.worker_grace_s)
        await self.runtime.start()

    async def ensure(self, wanted: dict[str, WorkerSpec]) -> list[WorkerSpec]:
        """Start agents that are new, restart those whose spec changed; return both."""
        changed = []
        for agent_id, spec in wanted.items():
            if self.specs.get(agent_id) == spec or not await self._runnable(spec):
                continue
            if agent_id in self.specs:
                log.info("the settings of %s changed: restarting its instances", agent_id)
                await self.runtime.stop_agent(agent_id)
            await self.runtime.register_agent(
                agent_id,
                command=[sys.executable, "-m", "services.worker"],
                resources=spec.resources(),
                health_checks=self._checks(),
                env=self.env,
            )
            self.specs[agent_id] = spec
            await self.runtime.start_agent(agent_id)
            changed.append(spec)
        return changed

    async def _runnable(self, spec: WorkerSpec) -> bool:
        if not spec.app or importable(spec.app):
            return True
        if (spec.agent_id, spec.app) not in self._unrunnable:
            self._unrunnable.add((spec.agent_id, spec.app))
            await self.report(
                c.IncidentRecorded(
                    severity="warning",
                    scope="agent",
                    scope_id=spec.agent_id,
                    kind="not_runnable",
                    actor="runtime",
                    message=f"{spec.agent_id} is registered with app {spec.app}, which the "
                    f"runtime cannot import from {os.getcwd()}; its instances are not started",
                )
            )
        return False

    def _checks(self) -> list[HealthCheck]:
        every = self.settings.check_interval_s
        return [
            HealthCheck(
                LIVENESS_CHECK,
                self.book.alive,
                CheckType.LIVENESS,
                every,
                every,
                failure_threshold=1,
            ),
            HealthCheck(
                "ready", self.book.ready, CheckType.READINESS, every, every, failure_threshold=1
            ),
        ]

    async def status(self, agent_id: str) -> AgentStatus:
        return await self.runtime.get_agent_status(agent_id)

    async def scale(self, agent_id: str, instances: int, reason: str) -> int:
        return await self.runtime.scale_agent(agent_id, instances, reason)

    async def sync(self) -> None:
        """Write every owned instance's record; drop records of instances that are gone."""
        for status in await self.runtime.list_agents():
            agent_id = status.agent_id
            self.metrics.desired.labels(agent_id).set(status.desired_instances)
            self.metrics.ready.labels(agent_id).set(status.ready_instances)
            current = {i.instance_id for i in status.instances}
            for inst in status.instances:
                await self.store.put_instance(agent_id, inst.instance_id, self.record(inst))
            for instance_id in await self.store.list_instances(agent_id):
                if instance_id not in current and self.owns(agent_id, instance_id):
                    await self.store.remove_instance(agent_id, instance_id)

    def record(self, inst: InstanceStatus) -> dict[str, Any]:
        """What the gateway shows of an instance: its process, as Helix sees it, and its
        heartbeat, as the worker reports it."""
        hb, fresh = self.book.of(inst), self.book.fresh(inst)
        data: dict[str, Any] = (
            hb.model_dump(mode="json", exclude={"schema_version", "event_id", "type"}) if hb else {}
        )
        return {
            **data,
            "agent_id": inst.agent_id,
            "instance_id": inst.instance_id,
            "state": fresh.state if fresh else _silent_state(inst, hb is not None),
            "process": inst.state,
            "pid": inst.pid,
            "cpu_percent": inst.cpu_percent,
            "rss_mb": inst.rss_mb,
            "restarts": inst.restart_count,
            "last_restart_reason": inst.last_restart_reason,
            "last_exit_code": inst.last_exit_code,
            "ready": inst.ready,
            "alive": fresh is not None,
            "ts": hb.ts if hb else inst.started_at or time.time(),
            "managed": True,
            "host": HOST,
        }

    # Helix's events ---------------------------------------------------------------------------
    def _enqueue(self, event: RuntimeEvent) -> None:
        if self.events.full():
            self.events.get_nowait()
            log.warning("runtime events piling up; dropped the oldest")
        self.events.put_nowait(event)

    async def run_events(self, stop: asyncio.Event) -> None:
        """Turn Helix's events into incidents and record changes, until ``stop``."""
        while not stop.is_set():
            try:
                event = await asyncio.wait_for(self.events.get(), 0.5)
            except TimeoutError:
                continue
            await self._handle(event, stop)

    async def _handle(self, event: RuntimeEvent, stop: asyncio.Event) -> None:
        """Record the event, waiting out a Redis or Kafka outage rather than dropping it."""
        while True:
            try:
                await self.on_event(event)
                return
            except TRANSIENT as exc:
                log.warning("cannot record %s yet (%r); retrying", event.kind, exc)
                if await sleep_or_stop(stop, 1.0):
                    return

    async def on_event(self, event: RuntimeEvent) -> None:
        iid, pid = event.instance_id or "", event.detail.get("pid")
        if isinstance(pid, int):
            self.pids[iid] = pid
        if event.kind in (EventKind.INSTANCE_EXITED, EventKind.INSTANCE_STOPPED):
            await orphans.forget_endpoint(self.store, self.pids.get(iid))
        if event.kind is EventKind.INSTANCE_STOPPED:
            await self.store.remove_instance(event.agent_id, iid)
        if event.kind in (EventKind.INSTANCE_RESTARTED, EventKind.INSTANCE_OOM_RESTARTED):
            self.metrics.restarts.labels(event.agent_id, str(event.kind)).inc()
        incident = incident_for(event, self.pids.get(iid))
        if incident is not None:
            if incident.kind == "instance_dead":
                self.metrics.dead.labels(event.agent_id).inc()
            await self.report(incident)

    # start and stop ---------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop every worker (drain, then kill) and remove their records."""
        await self.runtime.shutdown()
        with contextlib.suppress(Exception):  # Redis may be gone; the workers are not left
            for agent_id in self.specs:
                for instance_id in await self.store.list_instances(agent_id):
                    if self.owns(agent_id, instance_id):
                        await self.store.remove_instance(agent_id, instance_id)
            for pid in self.pids.values():
                await orphans.forget_endpoint(self.store, pid)


def _silent_state(inst: InstanceStatus, spoke: bool) -> str:
    """A process without a fresh heartbeat: still starting, gone silent, or between runs."""
    if inst.state != "running":
        return inst.state
    return "silent" if spoke else "starting"
