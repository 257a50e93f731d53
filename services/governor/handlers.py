"""The governors' entry points: drift, runs, operator commands and escalations in; decisions out.

Three levels, one per module: the agent governor (``agents``: pause, recover, degrade and
escalate), the service governor (``service_level``: contain, pause, escalate) and the
organisation governor (``org_level``: escalated services, token budgets, the kill switch).
Every decision is an incident with its cause ids and actor, so "why is this agent paused?" is
answered by the incident log alone. Every message is handled at most once in effect: its id is
marked seen only after its effects are stored, and every effect is idempotent by derived ids.

Operator commands are those on ``helm.control`` whose actor starts with ``operator``; the
governors' own commands (actors ``governor.*``) are not re-read. An operator's command is obeyed
as given and recorded; a resume also lets the service governor lift a containment that no
degraded agent justifies any more. ``PauseAgent`` / ``ResumeAgent`` for ``EVERY_AGENT`` (``*``)
engage and release the organisation's kill switch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from helix import TokenBudgetManager
from helm import contracts as c
from helm.budgets import budget_manager
from helm.bus import Bus
from helm.config import GovernorConfig
from helm.store import Store
from services.governor.agents import AgentLevel
from services.governor.metrics import GovernorMetrics
from services.governor.org_level import OrgLevel
from services.governor.policy import Policies
from services.governor.service_level import ServiceLevel


class Governor:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        policy: GovernorConfig,
        metrics: GovernorMetrics,
        clock: Callable[[], float] = time.time,
        budgets: TokenBudgetManager | None = None,
    ) -> None:
        self.agents = AgentLevel(bus, store, Policies(policy), metrics, clock)
        self.service = ServiceLevel(self.agents, policy.service, clock)
        self.org = OrgLevel(
            self.agents, budgets or budget_manager(store), policy.org, metrics, clock
        )

    async def on_drift(self, d: c.DriftDetected) -> None:
        await self.agents.on_drift(d)

    async def on_run(self, run: c.RunCompleted) -> None:
        await self.agents.on_run(run)

    async def on_control(self, cmd: c.ControlCommand) -> None:
        ledger = self.agents.ledger
        if not cmd.actor.startswith("operator") or await ledger.handled("control", cmd.event_id):
            return
        if cmd.agent_id != c.EVERY_AGENT:
            await self.agents.on_operator(cmd)
            if isinstance(cmd, c.ResumeAgent):
                await self.service.reassess(cmd)
        elif isinstance(cmd, c.PauseAgent | c.ResumeAgent):
            await self.org.kill_switch(cmd)
        await ledger.mark_handled("control", cmd.event_id)

    async def on_escalation(self, e: c.AgentEscalated | c.ServiceEscalated) -> None:
        if await self.agents.ledger.handled("escalation", e.event_id):
            return
        if isinstance(e, c.AgentEscalated):
            await self.service.on_agent_escalated(e)
        else:
            await self.org.on_service_escalated(e)
        await self.agents.ledger.mark_handled("escalation", e.event_id)

    async def tick(self) -> None:
        """Start the recovery attempts that are due (run by the leading process)."""
        await self.agents.tick()

    async def check_budgets(self) -> None:
        """Act on the token budgets' thresholds (run by the leading process)."""
        await self.org.check_budgets()

    async def refresh(self) -> None:
        """Re-read what this process caches: the recovering agents and the hierarchy."""
        await self.agents.refresh()
