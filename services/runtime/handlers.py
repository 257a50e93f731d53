"""The runtime's handlers: the hierarchy into Redis, heartbeats in, dead instances out.

Every heartbeat lands in the ``HeartbeatBook``, which is what liveness and readiness of the
instances the runtime owns are judged on (see ``fleet``). Instances it does not own (a
``helmctl worker`` somebody started) are judged here: one silent for longer than the timeout is
marked dead once (one incident) and stops counting as live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from helix import InstanceStatus
from helm import contracts as c
from helm.bus import Bus
from helm.config import HelmConfig
from helm.state import AgentMeta
from helm.store import Store
from services.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

READY_STATES = frozenset({"running", "probing"})


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


class NoHeartbeat(Exception):
    """Why a liveness check failed (its text becomes the restart reason)."""


class HeartbeatBook:
    """The latest heartbeat of every instance, and what it says about a running process.

    A heartbeat counts for a process only if it carries that process's pid, so a replaced
    instance is never kept alive by its predecessor's last words.
    """

    def __init__(
        self, timeout_s: float, startup_grace_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.timeout_s, self.startup_grace_s, self.clock = timeout_s, startup_grace_s, clock
        self.latest: dict[str, c.InstanceHeartbeat] = {}

    def record(self, hb: c.InstanceHeartbeat) -> None:
        known = self.latest.get(hb.instance_id)
        if known is None or hb.ts >= known.ts:
            self.latest[hb.instance_id] = hb

    def of(self, status: InstanceStatus) -> c.InstanceHeartbeat | None:
        hb = self.latest.get(status.instance_id)
        return hb if hb is not None and status.pid is not None and hb.pid == status.pid else None

    def fresh(self, status: InstanceStatus) -> c.InstanceHeartbeat | None:
        hb = self.of(status)
        return hb if hb is not None and self.clock() - hb.ts <= self.timeout_s else None

    def silence(self, status: InstanceStatus) -> float:
        """Seconds since this process last spoke (or since it started, if it never did)."""
        hb = self.of(status)
        since = hb.ts if hb is not None else (status.started_at or self.clock())
        return self.clock() - since

    def alive(self, status: InstanceStatus) -> bool:
        """Helix liveness check: raises ``NoHeartbeat`` (with the silence) when dead."""
        if status.pid is None or status.state != "running":
            return True  # between processes: nothing to judge
        limit = self.timeout_s if self.of(status) is not None else self.startup_grace_s
        silent = self.silence(status)
        if silent > limit:
            raise NoHeartbeat(f"no heartbeat for {silent:.1f} s (limit {limit:g} s)")
        return True

    def ready(self, status: InstanceStatus) -> bool:
        """Helix readiness check: a fresh heartbeat saying the instance takes work."""
        hb = self.fresh(status)
        return hb is not None and hb.state in READY_STATES


class Liveness:
    """Heartbeats in; instances nobody in this process owns are marked dead when silent."""

    def __init__(
        self,
        bus: Bus,
        store: Store,
        book: HeartbeatBook,
        metrics: RuntimeMetrics,
        owns: Callable[[str, str], bool] = lambda agent, instance: False,
    ) -> None:
        self.bus, self.store, self.book, self.metrics, self.owns = bus, store, book, metrics, owns

    async def on_heartbeat(self, hb: c.InstanceHeartbeat) -> None:
        self.book.record(hb)
        if self.owns(hb.agent_id, hb.instance_id):
            return  # the fleet writes its instances' records, heartbeat and process together
        data = hb.model_dump(mode="json", exclude={"schema_version", "event_id", "type"})
        await self.store.put_instance(hb.agent_id, hb.instance_id, {**data, "alive": True})

    async def check(self) -> None:
        now = self.book.clock()
        for agent_id in await self.store.agent_ids():
            instances = await self.store.list_instances(agent_id)
            alive = 0
            for instance_id, data in instances.items():
                if now - float(data.get("ts", 0)) <= self.book.timeout_s:
                    alive += 1
                elif data.get("alive", True) and not self.owns(agent_id, instance_id):
                    await self._dead(agent_id, instance_id, data, now)
            self.metrics.instances.labels(agent_id).set(alive)

    async def _dead(
        self, agent_id: str, instance_id: str, data: dict[str, Any], now: float
    ) -> None:
        silent = now - float(data.get("ts", 0))
        await self.store.put_instance(agent_id, instance_id, {**data, "alive": False})
        message = (
            f"instance {instance_id} of {agent_id} (pid {data.get('pid')}) sent no heartbeat "
            f"for {silent:.1f} s; marked dead"
        )
        await record(self.store, self.bus, dead_incident(instance_id, message))
        self.metrics.dead.labels(agent_id).inc()
        log.warning("instance %s of %s is dead (silent %.1f s)", instance_id, agent_id, silent)


def dead_incident(instance_id: str, message: str) -> c.IncidentRecorded:
    return c.IncidentRecorded(
        severity="warning",
        scope="instance",
        scope_id=instance_id,
        kind="instance_dead",
        actor="runtime",
        message=message,
    )


async def record(store: Store, bus: Bus, incident: c.IncidentRecorded) -> None:
    """Into the incident log once, then onto ``helm.incidents``."""
    if await store.record_incident(incident):
        await bus.publish(c.INCIDENTS, incident)
