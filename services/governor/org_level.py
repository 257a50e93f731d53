"""The organisation governor: escalated services, token budgets and the kill switch.

- A ``ServiceEscalated`` becomes a critical organisation incident citing it and its causes.
- Budgets: ``check_budgets`` (run by the leading process, about every second) reads every Helix
  budget on Helm's Redis prefix and acts on the thresholds in ``thresholds``: warning, throttle,
  pause, and the lift when the period resets; once per budget, period and level.
- The kill switch: an operator's ``PauseAgent`` for ``contracts.EVERY_AGENT`` pauses every agent
  of the organisation (a hold named ``killswitch``); a ``ResumeAgent`` for it releases them. The
  organisation's status (``org:<id>`` in Redis) says whether it is engaged, by whom and why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from helix import TokenBudgetManager
from helm import contracts as c
from helm.config import OrgPolicy
from helm.state import ScopeState, ScopeStatus
from services.governor import thresholds
from services.governor.agents import AgentLevel
from services.governor.directory import Directory
from services.governor.holds import KILL_SWITCH, Hold
from services.governor.machine import derived_id
from services.governor.metrics import GovernorMetrics
from services.governor.thresholds import ACTOR, BudgetAction


class OrgLevel:
    def __init__(
        self,
        agents: AgentLevel,
        budgets: TokenBudgetManager,
        policy: OrgPolicy,
        metrics: GovernorMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.agents, self.store, self.budgets = agents, agents.store, budgets
        self.policy, self.metrics, self.clock = policy, metrics, clock

    async def on_service_escalated(self, e: c.ServiceEscalated) -> None:
        await self.agents.record(
            c.IncidentRecorded(
                event_id=derived_id(e.event_id, "org-incident"),
                severity="critical",
                scope="org",
                scope_id=e.org_id,
                kind="service_escalated",
                message=f"service {e.service_id} escalated to the organisation: {e.reason}",
                actor=ACTOR,
                cause_ids=list(dict.fromkeys([e.event_id, *e.cause_ids])),
            )
        )

    async def kill_switch(self, cmd: c.PauseAgent | c.ResumeAgent) -> None:
        """Engage (pause) or release (resume) the kill switch on every agent."""
        engage = isinstance(cmd, c.PauseAgent)
        tree = Directory.parse(await self.store.get_hierarchy())
        targets = sorted(set(tree.agents()) | set(await self.store.agent_ids()))
        verb = "engaged" if engage else "released"
        why = f"kill switch {verb} by {cmd.actor}" + (f": {cmd.reason}" if cmd.reason else "")
        status = ScopeStatus(
            state=ScopeState.PAUSED if engage else ScopeState.HEALTHY,
            since=self.clock(),
            reason=why,
            actor=cmd.actor,
            episode=cmd.event_id,
            cause_ids=[cmd.event_id],
        )
        await self.store.set_scope_status("org", tree.org_id, status)
        hold = Hold(paused=True, actor=ACTOR, reason=why, cause_ids=[cmd.event_id])
        for agent in targets:
            await self.agents.put_hold(
                agent, KILL_SWITCH, hold if engage else None, cmd.event_id, ACTOR, why
            )
        await self.agents.record(
            c.IncidentRecorded(
                event_id=derived_id(cmd.event_id, "kill-switch"),
                severity="critical" if engage else "info",
                scope="org",
                scope_id=tree.org_id,
                kind=f"kill_switch_{verb}",
                message=f"{why}; {'paused' if engage else 'released'} {len(targets)} agents",
                actor=cmd.actor,
                cause_ids=[cmd.event_id],
            )
        )

    async def check_budgets(self) -> None:
        """Act on every budget whose level or period moved since the last check."""
        statuses = await self.budgets.check_budget()
        marks = await self.agents.ledger.marks()
        tree = Directory.parse(await self.store.get_hierarchy())
        for s in statuses:
            self.metrics.budget_utilization.labels(s.budget_id).set(s.utilization)
            scope = tree.in_scope(s.scope.value, s.scope_id)
            act = thresholds.plan(s, marks.get(s.budget_id), scope, self.policy)
            if act is not None:
                await self._carry_out(s.budget_id, act, scope)
        for budget_id in marks.keys() - {s.budget_id for s in statuses}:
            scope_kind, scope_id, _ = budget_id.split(":")
            scope = tree.in_scope(scope_kind, scope_id)
            act = thresholds.plan_removed(budget_id, marks[budget_id], scope)
            await self._carry_out(budget_id, act, scope, forget=True)
            with contextlib.suppress(KeyError):
                self.metrics.budget_utilization.remove(budget_id)

    async def _carry_out(
        self, budget_id: str, act: BudgetAction, agents: list[str], forget: bool = False
    ) -> None:
        if act.apply:
            for agent in agents:
                await self.agents.put_hold(
                    agent, thresholds.source(budget_id), act.hold, act.cause, ACTOR, act.reason
                )
        for incident in act.incidents:
            await self.agents.record(incident)
        await self.agents.ledger.set_mark(budget_id, None if forget else act.mark)
