"""The service governor's effects: containment decided in ``containment``, carried out here.

Decisions about one service are taken under its mutex, on the hierarchy and the agents' statuses
read from Redis at that moment. Order of effects: the service's status (``service:<id>`` in
Redis), the holds on its agents (their control in Redis, then commands), its incidents, then the
escalation to the organisation. Every id is derived from the episode, so redelivery repeats
nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from helm import contracts as c
from helm.config import ServicePolicy
from helm.state import AgentState, ScopeState, Status
from services.governor import containment
from services.governor.agents import AgentLevel
from services.governor.containment import ACTOR, Containment
from services.governor.directory import Directory


class ServiceLevel:
    def __init__(
        self, agents: AgentLevel, policy: ServicePolicy, clock: Callable[[], float]
    ) -> None:
        self.agents, self.store, self.policy, self.clock = agents, agents.store, policy, clock

    async def on_agent_escalated(self, e: c.AgentEscalated) -> None:
        """Contain the service of a degraded agent; pause it when too many are degraded."""
        async with self.agents.mutex.hold(f"service:{e.service_id}"):
            tree = Directory.parse(await self.store.get_hierarchy())
            members = tree.of_service(e.service_id)
            svc = await self.store.get_scope_status("service", e.service_id)
            degraded = await self._degraded(members)
            plan = containment.on_escalated(
                svc, e, members, degraded, self.policy, tree.org_id, self.clock()
            )
            if plan is not None:
                await self._carry_out(e.service_id, plan, e.event_id)

    async def reassess(self, cmd: c.ControlCommand) -> None:
        """After an operator resumed an agent: lift containment once none is degraded."""
        tree = Directory.parse(await self.store.get_hierarchy())
        service = tree.service_of(cmd.agent_id)
        if service is None:
            return
        if (await self.store.get_scope_status("service", service)).state == ScopeState.HEALTHY:
            return
        async with self.agents.mutex.hold(f"service:{service}"):
            svc = await self.store.get_scope_status("service", service)
            members = tree.of_service(service)
            note = f"{cmd.actor} resumed {cmd.agent_id}"
            plan = containment.on_cleared(
                svc,
                service,
                members,
                await self._degraded(members),
                cmd.event_id,
                note,
                self.clock(),
            )
            if plan is not None:
                await self._carry_out(service, plan, cmd.event_id)

    async def _degraded(self, agents: list[str]) -> set[str]:
        pipe = self.store.redis.pipeline(transaction=False)
        for agent in agents:
            pipe.hget(self.store.key("agent", agent), "status")
        rows = await pipe.execute()
        return {
            a
            for a, raw in zip(agents, rows, strict=True)
            if raw and Status.model_validate_json(raw).state == AgentState.DEGRADED
        }

    async def _carry_out(self, service: str, plan: Containment, cause: str) -> None:
        await self.store.set_scope_status("service", service, plan.status)
        reason = plan.hold.reason if plan.hold else plan.status.reason
        for agent in plan.targets:
            await self.agents.put_hold(
                agent, containment.source(service), plan.hold, cause, ACTOR, reason
            )
        for incident in plan.incidents:
            await self.agents.record(incident)
        for esc in plan.escalations:
            await self.agents.bus.publish(c.ESCALATIONS, esc)
