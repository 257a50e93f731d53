"""Issue 5 acceptance: the escalation chain, agent → service → organisation, end to end.

An agent that fails recovery is degraded, the service governor limits its siblings, a second
degraded agent pauses the service, the organisation level receives it; the incident log tells the
story in order with causes and actors. Operators resuming the agents then restore the service.
"""

from __future__ import annotations

from helm import contracts as c
from helm.state import AgentState, Constraints, ScopeState
from tests.integration.governor.conftest import Governed, Harness
from tests.waiting import eventually

CONFIG = """
[org]
id = "acme"

[[services]]
id = "risk"

[governor]
recovery_delay_s = 0.0
max_attempts = 1

[governor.service]
pause_share = 0.5
[governor.service.limits]
rate_limit_per_min = 30
batch_size = 3
max_retries = 1
"""
AGENTS = {"a": "risk", "b": "risk", "c": "risk"}


def drift(agent: str) -> c.DriftDetected:
    return c.DriftDetected(
        agent_id=agent,
        service_id="risk",
        rule="tokens_spike",
        metric="tokens_per_run",
        observed=9000,
        baseline=500,
        threshold=2500,
        window=20,
        evidence_run_ids=[f"run-{agent}"],
    )


async def degrade(h: Harness, agent: str) -> list[str]:
    """Drift, the recovery attempt, a drift during it: the agent is degraded. Drift ids back."""
    first, second = drift(agent), drift(agent)
    await h.bus.publish(c.DRIFT, first)
    await eventually(
        lambda: _state(h, agent, AgentState.RECOVERING), 20, what=f"{agent} recovering"
    )
    await h.bus.publish(c.DRIFT, second)
    await eventually(lambda: _state(h, agent, AgentState.DEGRADED), 20, what=f"{agent} degraded")
    return [first.event_id, second.event_id]


async def _state(h: Harness, agent: str, state: AgentState) -> bool:
    return (await h.store.get_status(agent)).state == state


async def test_a_degraded_agent_contains_its_service_a_second_pauses_it_the_org_hears_it(
    governed: Governed,
) -> None:
    async with governed(CONFIG, AGENTS) as h:
        await h.bus.publish(
            c.CONTROL, c.ConstrainAgent(agent_id="c", actor="operator:ana", batch_size=1)
        )
        await eventually(lambda: _limits(h, "c", Constraints(batch_size=1)), 20, what="c limited")

        drift_a = await degrade(h, "a")
        contained = Constraints(rate_limit_per_min=30, batch_size=3, max_retries=1)
        await eventually(lambda: _limits(h, "b", contained), 10, what="b under service limits")
        # c keeps its tighter batch size; the service adds what it lacked.
        await eventually(
            lambda: _limits(h, "c", contained.model_copy(update={"batch_size": 1})), 10
        )
        svc = await h.store.get_scope_status("service", "risk")
        assert svc.state == ScopeState.CONTAINED and svc.degraded == ["a"]
        for sibling in ("b", "c"):
            assert await h.tap.some(c.ConstrainAgent, agent_id=sibling, actor="governor.service")
        assert not h.tap.all(c.ConstrainAgent, agent_id="a", actor="governor.service")
        assert not (await h.store.get_control("c")).paused

        drift_b = await degrade(h, "b")
        await eventually(lambda: _paused(h, "c"), 10, what="c paused with its service")
        c_control = await h.store.get_control("c")
        assert c_control.actor == "governor.service" and "service risk paused" in c_control.reason
        assert await h.tap.some(c.PauseAgent, agent_id="c", actor="governor.service")
        escalated = await h.tap.some(c.ServiceEscalated)
        assert escalated[0].degraded_agents == ["a", "b"]
        await eventually(lambda: _kind(h, "service_escalated"), 10, what="the org incident")
        assert (await h.store.get_scope_status("service", "risk")).state == ScopeState.PAUSED

        log = await h.incidents()
        story = [(i.scope_id, i.kind, i.actor) for i in log]
        assert story == [
            ("c", "operator:ConstrainAgent", "operator:ana"),
            ("a", "paused", "governor.agent"),
            ("a", "recovering", "governor.agent"),
            ("a", "degraded", "governor.agent"),
            ("risk", "service_contained", "governor.service"),
            ("b", "paused", "governor.agent"),
            ("b", "recovering", "governor.agent"),
            ("b", "degraded", "governor.agent"),
            ("risk", "service_paused", "governor.service"),
            ("acme", "service_escalated", "governor.org"),
        ]
        by_kind = {(i.scope_id, i.kind): i for i in log}
        agent_escalations = {e.agent_id: e.event_id for e in h.tap.all(c.AgentEscalated)}
        assert drift_a[1] in by_kind[("a", "degraded")].cause_ids
        assert agent_escalations["a"] in by_kind[("risk", "service_contained")].cause_ids
        assert drift_a[1] in by_kind[("risk", "service_contained")].cause_ids
        assert agent_escalations["b"] in by_kind[("risk", "service_paused")].cause_ids
        assert drift_b[1] in by_kind[("risk", "service_paused")].cause_ids
        org = by_kind[("acme", "service_escalated")]
        assert org.severity == "critical" and escalated[0].event_id in org.cause_ids
        assert set(agent_escalations.values()) <= set(org.cause_ids)

        # Operators resume the service's agents (as POST /services/risk/resume does): once no
        # agent is degraded, the service is healthy again and its limits are lifted; c keeps
        # the limit its operator gave it.
        resumes = [c.ResumeAgent(agent_id=a, actor="operator:ana", reason="fixed") for a in AGENTS]
        for cmd in resumes:
            await h.bus.publish(c.CONTROL, cmd)
        await eventually(lambda: _kind(h, "service_restored"), 20, what="the service restored")
        assert (await h.store.get_scope_status("service", "risk")).state == ScopeState.HEALTHY
        await eventually(lambda: _limits(h, "b", Constraints()), 10, what="b's limits lifted")
        await eventually(lambda: _limits(h, "c", Constraints(batch_size=1)), 10)
        for agent in AGENTS:
            assert not (await h.store.get_control(agent)).paused
            assert (await h.store.get_status(agent)).state == AgentState.HEALTHY
        restored = next(i for i in await h.incidents() if i.kind == "service_restored")
        assert restored.actor == "governor.service"
        assert restored.cause_ids[0] in {r.event_id for r in resumes}


async def _limits(h: Harness, agent: str, want: Constraints) -> bool:
    return (await h.store.get_control(agent)).constraints == want


async def _paused(h: Harness, agent: str) -> bool:
    return (await h.store.get_control(agent)).paused


async def _kind(h: Harness, kind: str) -> bool:
    return any(i.kind == kind for i in await h.incidents())
