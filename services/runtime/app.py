"""The runtime service: the hierarchy, the worker instances, their liveness and their number.

Always: the hierarchy from the configuration file into Redis, and heartbeats judged (an
instance silent past ``heartbeat_timeout_s`` is marked dead, with an incident). With
``manage_workers`` (``helmctl up`` sets it) the runtime also owns the workers through Helix:
it starts them, replaces dead ones, enforces memory limits, autoscales each agent by its policy
and turns all of it into incidents; on stop it leaves no worker behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from helix import AgentRuntime
from helm import contracts as c
from helm.base import BaseApp, periodic
from helm.config import load_config
from helm.runner import sleep_or_stop
from services.runtime.autoscale import Autoscaler
from services.runtime.backlog import Backlog
from services.runtime.desired import desired
from services.runtime.fleet import Fleet
from services.runtime.handlers import HeartbeatBook, Liveness, load_hierarchy, record
from services.runtime.metrics import RuntimeMetrics
from services.runtime.settings import RuntimeSettings


class RuntimeApp(BaseApp):
    name = "runtime"

    def __init__(
        self, settings: RuntimeSettings, *, helix: AgentRuntime | None = None, **kwargs: Any
    ) -> None:
        super().__init__(settings, ops_port=settings.ops_port, **kwargs)
        self.rs = settings
        self.config = load_config(settings.config_file)
        self.topics = (*c.FIXED_TOPICS, *(c.tasks_topic(a.id) for a in self.config.agents))
        metrics = RuntimeMetrics(self.registry)
        self.book = HeartbeatBook(settings.heartbeat_timeout_s, settings.startup_grace_s)
        self.fleet: Fleet | None = None
        self.autoscaler: Autoscaler | None = None
        if settings.manage_workers:
            self.fleet = Fleet(settings, self.store, self.book, metrics, self.report, helix)
            self.autoscaler = Autoscaler(
                self.fleet, Backlog(settings.kafka), self.store, metrics, self.report
            )
        owns = self.fleet.owns if self.fleet else (lambda agent, instance: False)
        self.liveness = Liveness(self.bus, self.store, self.book, metrics, owns)

    async def report(self, incident: c.IncidentRecorded) -> None:
        await record(self.store, self.bus, incident)

    async def start(self) -> None:
        await super().start()
        provider = "anthropic" if self.settings.anthropic_api_key else "offline"
        await load_hierarchy(self.store, self.config, provider)
        if self.fleet is not None:
            await self.fleet.start()
            try:
                await self.reconcile()
            except BaseException:  # no stop() follows a failed start: leave no worker behind
                await self.fleet.shutdown()
                raise

    async def reconcile(self) -> None:
        """Run what should run (new user agents included) and publish the instances' state."""
        assert self.fleet is not None and self.autoscaler is not None
        metas = [a.meta for a in await self.store.all_agents()]
        for spec in await self.fleet.ensure(desired(self.config, metas)):
            await self.bus.ensure_topics([c.tasks_topic(spec.agent_id)])
            await self.autoscaler.adopt(spec)
        await self.fleet.sync()

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        heartbeats = self.bus.consumer([c.HEARTBEATS], self.rs.group, self.liveness.on_heartbeat)
        loops = [heartbeats.run(stop), self.checker(stop)]
        if self.fleet is not None:
            loops += [self.fleet.run_events(stop), self.scaling(stop)]
        return loops

    async def checker(self, stop: asyncio.Event) -> None:
        async def check() -> None:
            await self.liveness.check()
            if self.fleet is not None:
                await self.reconcile()

        await periodic(stop, self.rs.check_interval_s, check, "liveness")

    async def scaling(self, stop: asyncio.Event) -> None:
        assert self.autoscaler is not None
        if not await sleep_or_stop(stop, self.rs.scale_interval_s):
            await periodic(stop, self.rs.scale_interval_s, self.autoscaler.tick, "autoscaling")

    async def stop(self) -> None:
        """Workers first (they drain while Kafka and Redis are still there), then the rest."""
        if self.fleet is not None and self.autoscaler is not None:
            await self.fleet.shutdown()
            await self.autoscaler.backlog.close()
        await super().stop()


def build_app(settings: RuntimeSettings, **kwargs: Any) -> RuntimeApp:
    return RuntimeApp(settings, **kwargs)
