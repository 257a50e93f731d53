"""The governors' metrics.

``helm_governor_agent_state{agent,state}`` is 1 for an agent's current state and 0 for the
others; every governor process refreshes it from Redis, so any of them can be scraped.
``helm_governor_budget_utilization_ratio{budget}`` is exported by the process that leads the
budget checks (the others clear it), so one series per budget is live at a time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from helm.state import AgentState


class GovernorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.actions = Counter(
            "helm_governor_actions_total",
            "Commands the governors sent",
            ["agent", "action"],
            registry=registry,
        )
        self.transitions = Counter(
            "helm_governor_transitions_total",
            "Agent state transitions",
            ["agent", "state"],
            registry=registry,
        )
        self.agent_state = Gauge(
            "helm_governor_agent_state",
            "1 for the agent's current state, 0 for the others",
            ["agent", "state"],
            registry=registry,
        )
        self.budget_utilization = Gauge(
            "helm_governor_budget_utilization_ratio",
            "Share of a token budget used in its current period (1.0 = exhausted)",
            ["budget"],
            registry=registry,
        )

    def state(self, agent: str, state: AgentState) -> None:
        for s in AgentState:
            self.agent_state.labels(agent, s.value).set(1 if s == state else 0)
