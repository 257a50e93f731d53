"""The runtime's handlers: the hierarchy into Redis, heartbeats in, dead instances out.

Liveness is judged from heartbeats: an instance silent for longer than the timeout is marked
dead once (one incident), removed from the agent's running instances, and, where the runtime
manages its processes, replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from helm import contracts as c
from helm.bus import Bus
from helm.config import HelmConfig
from helm.state import AgentMeta
from helm.store import Store
from services.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)


def hierarchy_of(config: HelmConfig) -> dict[str, Any]:
    return {
        "org": config.org.model_dump(),
        "services": [
            {**s.model_dump(), "agents": [a.id for a in config.agents if a.service == s.id]}
            for s in config.services
        ],
    }


async def load_hierarchy(store: Store, config: HelmConfig, provider: str) -> None:
    """Write org -> services -> agents and every agent's meta; idempotent."""
    await store.put_hierarchy(hierarchy_of(config))
    for a in config.agents:
        await store.put_meta(
            AgentMeta(
                agent_id=a.id,
                service_id=a.service,
                org_id=config.org.id,
                kind=a.kind,
                model=a.model,
                provider=provider,
                min_instances=a.min_instances,
                max_instances=a.max_instances,
            )
        )


class Liveness:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        timeout_s: float,
        metrics: RuntimeMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus, self.store, self.timeout_s, self.metrics, self.clock = (
            bus,
            store,
            timeout_s,
            metrics,
            clock,
        )

    async def on_heartbeat(self, hb: c.InstanceHeartbeat) -> None:
        data = hb.model_dump(mode="json", exclude={"schema_version", "event_id", "type"})
        await self.store.put_instance(hb.agent_id, hb.instance_id, {**data, "alive": True})

    async def check(self) -> None:
        now = self.clock()
        for agent_id in await self.store.agent_ids():
            instances = await self.store.list_instances(agent_id)
            alive = 0
            for instance_id, data in instances.items():
                if now - float(data.get("ts", 0)) <= self.timeout_s:
                    alive += 1
                elif data.get("alive", True):
                    await self._dead(agent_id, instance_id, data, now)
            self.metrics.instances.labels(agent_id).set(alive)

    async def _dead(
        self, agent_id: str, instance_id: str, data: dict[str, Any], now: float
    ) -> None:
        silent = now - float(data.get("ts", 0))
        await self.store.put_instance(agent_id, instance_id, {**data, "alive": False})
        incident = c.IncidentRecorded(
            severity="warning",
            scope="instance",
            scope_id=instance_id,
            kind="instance_dead",
            actor="runtime",
            message=f"instance {instance_id} of {agent_id} (pid {data.get('pid')}) sent no heartbeat for "
            f"{silent:.1f} s; marked dead",
        )
        if await self.store.record_incident(incident):
            await self.bus.publish(c.INCIDENTS, incident)
        self.metrics.dead.labels(agent_id).inc()
        log.warning("instance %s of %s is dead (silent %.1f s)", instance_id, agent_id, silent)
