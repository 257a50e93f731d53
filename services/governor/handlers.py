"""The governors' handlers: drift, runs, operator commands and escalations in; decisions out.

Effects are applied in the order that keeps the truth first: the agent's status and desired
control in Redis, then incidents (deduplicated by id), then commands and escalations on Kafka.
An event is marked handled only after its effects are stored; a redelivered event is skipped, and
one redelivered before it was marked finds the state already moved and decides nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from helm import contracts as c
from helm.bus import Bus
from helm.config import GovernorConfig
from helm.state import Control, Status
from helm.store import Store
from services.governor import machine
from services.governor.machine import Decision
from services.governor.metrics import GovernorMetrics

log = logging.getLogger(__name__)


class Governor:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        policy: GovernorConfig,
        metrics: GovernorMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus, self.store, self.policy, self.metrics, self.clock = (
            bus,
            store,
            policy,
            metrics,
            clock,
        )
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def _pending(self) -> str:
        return self.store.key("governor", "recoveries")

    async def on_drift(self, d: c.DriftDetected) -> None:
        await self._once(
            "drift",
            d.event_id,
            d.agent_id,
            lambda st, ctl: machine.on_drift(st, d, self.policy, self.clock()),
        )

    async def on_run(self, run: c.RunCompleted) -> None:
        await self._once(
            "run",
            run.event_id,
            run.agent_id,
            lambda st, ctl: machine.on_run(st, run, self.policy, self.clock()),
        )

    async def on_control(self, cmd: c.ControlCommand) -> None:
        if not cmd.actor.startswith("operator"):
            return
        await self._once(
            "control",
            cmd.event_id,
            cmd.agent_id,
            lambda st, ctl: machine.on_operator(cmd.agent_id, st, ctl, cmd, self.clock()),
        )

    async def on_escalation(self, e: c.AgentEscalated | c.ServiceEscalated) -> None:
        if not isinstance(e, c.AgentEscalated) or not await self._fresh("escalation", e.event_id):
            return
        incident = c.IncidentRecorded(
            event_id=machine.derived_id(e.event_id, "service-incident"),
            severity="critical",
            scope="service",
            scope_id=e.service_id,
            kind="agent_escalated",
            actor="governor.service",
            cause_ids=[e.event_id],
            message=f"service {e.service_id}: agent {e.agent_id} escalated after {e.attempts} failed recoveries",
        )
        await self._record(incident)
        await self.store.first_time("governor:escalation", e.event_id)

    async def tick(self) -> None:
        """Start the recovery attempts that are due."""
        due = await self.store.redis.zrangebyscore(self._pending, "-inf", self.clock())
        for agent_id in due:
            await self.store.redis.zrem(self._pending, agent_id)
            async with self.locks[agent_id]:
                st = await self.store.get_status(agent_id)
                decision = machine.on_tick(agent_id, st, self.policy, self.clock())
                if decision:
                    await self._apply(agent_id, decision)

    async def _fresh(self, kind: str, event_id: str) -> bool:
        return not await self.store.redis.exists(
            self.store.key("seen", f"governor:{kind}", event_id)
        )

    async def _once(
        self,
        kind: str,
        event_id: str,
        agent_id: str,
        decide: Callable[[Status, Control], Decision | None],
    ) -> None:
        if not await self._fresh(kind, event_id):
            return
        async with self.locks[agent_id]:
            st = await self.store.get_status(agent_id)
            ctl = await self.store.get_control(agent_id)
            decision = decide(st, ctl)
            if decision is not None:
                await self._apply(agent_id, decision)
        await self.store.first_time(f"governor:{kind}", event_id)

    async def _apply(self, agent_id: str, d: Decision) -> None:
        before = await self.store.get_status(agent_id)
        await self.store.set_status(agent_id, d.status)
        if d.control is not None:
            await self.store.set_control(agent_id, d.control)
        if d.status.recover_at is not None:
            await self.store.redis.zadd(self._pending, {agent_id: d.status.recover_at})
        for incident in d.incidents:
            await self._record(incident)
        for cmd in d.commands:
            await self.bus.publish(c.CONTROL, cmd)
            self.metrics.actions.labels(agent_id, type(cmd).__name__).inc()
        for esc in d.escalations:
            await self.bus.publish(c.ESCALATIONS, esc)
        if before.state != d.status.state:
            self.metrics.transitions.labels(agent_id, d.status.state.value).inc()
            log.info(
                "%s: %s -> %s (%s)",
                agent_id,
                before.state.value,
                d.status.state.value,
                d.status.reason,
            )

    async def _record(self, incident: c.IncidentRecorded) -> None:
        if await self.store.record_incident(incident):
            await self.bus.publish(c.INCIDENTS, incident)
