"""The governors' pure logic: the agent state machine, policies, holds, containment, budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helix import BudgetScope, BudgetStatus, TokenPeriod
from helix.budgets.models import alert_level
from helm import contracts as c
from helm.config import GovernorConfig, GovernorOverride, OrgPolicy, ServicePolicy
from helm.state import AgentState, Constraints, Control, ScopeState, ScopeStatus, Status
from services.governor import containment, machine, thresholds
from services.governor.holds import Hold, after_operator, commands_between, effective, within
from services.governor.ledger import Mark
from services.governor.policy import Policies

P = GovernorConfig(recovery_delay_s=2.0, clean_runs=3, max_attempts=2)


def drift(agent: str = "a") -> c.DriftDetected:
    return c.DriftDetected(
        agent_id=agent,
        service_id="s",
        rule="tokens_spike",
        metric="tokens_per_run",
        observed=9000,
        baseline=500,
        threshold=2500,
        window=20,
        evidence_run_ids=["r1"],
    )


def test_drift_pauses_a_healthy_agent_tightens_limits_and_schedules_recovery() -> None:
    d = machine.on_drift(Status(), drift(), P, now=100.0)
    assert d is not None
    assert d.status.state == AgentState.PAUSED
    assert d.status.recover_at == 102.0
    assert d.control is not None and d.control.paused and d.control.constraints == P.tight
    assert [type(x).__name__ for x in d.commands] == ["PauseAgent", "ConstrainAgent"]
    assert d.incidents[0].kind == "paused"
    assert d.incidents[0].cause_ids[0] == d.commands[0].cause_ids[0]
    assert "tokens_spike" in d.incidents[0].message


def test_the_same_drift_twice_yields_the_same_ids() -> None:
    ev = drift()
    one, two = machine.on_drift(Status(), ev, P, 1.0), machine.on_drift(Status(), ev, P, 2.0)
    assert one and two
    assert [x.event_id for x in one.commands + one.incidents] == [
        x.event_id for x in two.commands + two.incidents
    ]


def test_drift_on_a_paused_agent_changes_nothing() -> None:
    assert machine.on_drift(Status(state=AgentState.PAUSED), drift(), P, 1.0) is None


def test_recovery_starts_only_when_due_and_resumes_for_probes() -> None:
    paused = machine.on_drift(Status(), drift(), P, 100.0)
    assert paused
    assert machine.on_tick("a", paused.status, P, 101.9) is None
    rec = machine.on_tick("a", paused.status, P, 102.0)
    assert rec is not None and rec.status.state == AgentState.RECOVERING
    assert rec.control is not None and not rec.control.paused and rec.control.probe
    resume = [x for x in rec.commands if isinstance(x, c.ResumeAgent)]
    assert resume and resume[0].probe


def recovering(since: float = 10.0, attempts: int = 0) -> Status:
    return Status(state=AgentState.RECOVERING, since=since, attempts=attempts, episode="e")


def test_k_consecutive_clean_runs_make_it_healthy_and_lift_limits() -> None:
    st = recovering()
    for _ in range(P.clean_runs - 1):
        d = machine.on_run(st, c.RunCompleted(agent_id="a", ts=11.0), P, 12.0)
        assert d is not None and d.status.state == AgentState.RECOVERING
        st = d.status
    done = machine.on_run(st, c.RunCompleted(agent_id="a", ts=11.0), P, 12.0)
    assert done is not None and done.status.state == AgentState.HEALTHY
    lift = done.commands[0]
    assert (
        isinstance(lift, c.ConstrainAgent)
        and lift.batch_size is None
        and lift.rate_limit_per_min is None
    )
    assert done.control is not None and done.control.constraints == Constraints()


def test_a_run_with_retries_restarts_the_clean_count() -> None:
    st = recovering().model_copy(update={"clean_runs": 2})
    d = machine.on_run(st, c.RunCompleted(agent_id="a", ts=11.0, retries=1), P, 12.0)
    assert d is not None and d.status.clean_runs == 0


def test_runs_from_before_the_attempt_do_not_count() -> None:
    assert (
        machine.on_run(recovering(since=10.0), c.RunCompleted(agent_id="a", ts=9.0), P, 12.0)
        is None
    )


def test_failed_attempts_pause_again_with_longer_delay_then_degrade_and_escalate() -> None:
    again = machine.on_drift(recovering(), drift(), P, 50.0)
    assert again is not None and again.status.state == AgentState.PAUSED
    assert again.status.attempts == 1 and again.status.recover_at == 54.0
    last = machine.on_drift(recovering(attempts=1), drift(), P, 60.0)
    assert last is not None and last.status.state == AgentState.DEGRADED
    assert last.control is not None and last.control.paused
    assert last.escalations and last.escalations[0].service_id == "s"
    assert last.incidents[0].severity == "critical"


def test_operator_pause_and_resume_are_recorded_with_the_actor() -> None:
    d = machine.on_operator(
        "a", Status(), Control(), c.PauseAgent(agent_id="a", actor="operator:ana"), 1.0
    )
    assert d is not None and d.status.state == AgentState.PAUSED and d.status.recover_at is None
    assert d.incidents[0].actor == "operator:ana"
    r = machine.on_operator(
        "a", d.status, Control(paused=True), c.ResumeAgent(agent_id="a", actor="operator:ana"), 2.0
    )
    assert (
        r is not None
        and r.status.state == AgentState.HEALTHY
        and r.control is not None
        and not r.control.paused
    )


# -- per-service and per-agent policy ------------------------------------------------------------


def test_an_agent_override_wins_over_its_service_and_merges_limits() -> None:
    cfg = GovernorConfig(
        max_attempts=3,
        services={"s": GovernorOverride(max_attempts=5, recovery_delay_s=9.0)},
        agents={"a": GovernorOverride(max_attempts=1, tight=Constraints(batch_size=1))},
    )
    p = Policies(cfg).resolve("a", "s")
    assert (p.max_attempts, p.recovery_delay_s) == (1, 9.0)
    assert p.tight == Constraints(rate_limit_per_min=120, batch_size=1, max_retries=1)
    assert Policies(cfg).resolve("b", "s").max_attempts == 5
    assert Policies(cfg).resolve("b", "other").max_attempts == 3


# -- holds: the outer governors' limits and pauses over the agent governor's control ------------


def test_holds_tighten_limits_pause_and_lifting_them_restores_the_agent() -> None:
    base = Control(constraints=Constraints(batch_size=1))
    limit = Hold(
        constraints=Constraints(rate_limit_per_min=60, batch_size=2), actor="governor.service"
    )
    pause = Hold(paused=True, actor="governor.org", reason="budget exceeded")
    held = effective(base, {"service:s": limit, "budget:b": pause}, 5.0)
    assert held.paused and held.actor == "governor.org" and held.reason == "budget exceeded"
    assert held.constraints == Constraints(rate_limit_per_min=60, batch_size=1)
    lifted = effective(base, {}, 6.0)
    cmds = commands_between("a", held, lifted, "cause", "governor.org", "reset", ["x"])
    assert [type(m).__name__ for m in cmds] == ["ConstrainAgent", "ResumeAgent"]
    assert isinstance(cmds[0], c.ConstrainAgent)
    assert cmds[0].batch_size == 1 and cmds[0].rate_limit_per_min is None
    assert commands_between("a", held, held, "cause", "g", "", []) == []


def test_a_recovery_does_not_resume_an_agent_a_hold_keeps_paused() -> None:
    paused = machine.on_drift(Status(), drift(), P, 100.0)
    assert paused
    rec = machine.on_tick("a", paused.status, P, 102.0)
    assert rec and rec.control
    eff = effective(rec.control, {"killswitch": Hold(paused=True)}, 102.0)
    assert eff.paused and [type(m).__name__ for m in within(rec.commands, eff)] == [
        "ConstrainAgent"
    ]


def test_an_operator_resume_lifts_pauses_and_a_constraint_command_replaces_limits() -> None:
    holds = {
        "service:s": Hold(paused=True, constraints=Constraints(batch_size=2)),
        "killswitch": Hold(paused=True),
    }
    resumed = after_operator(holds, c.ResumeAgent(agent_id="a", actor="operator:ana"))
    assert resumed == {"service:s": Hold(constraints=Constraints(batch_size=2))}
    assert after_operator(resumed, c.ConstrainAgent(agent_id="a", actor="operator:ana")) == {}


# -- the service governor --------------------------------------------------------------------------


def escalated(agent: str, event_id: str) -> c.AgentEscalated:
    return c.AgentEscalated(event_id=event_id, agent_id=agent, service_id="s", cause_ids=["d"])


def test_a_degraded_agent_contains_its_service_and_a_second_one_pauses_and_escalates_it() -> None:
    sp, agents = ServicePolicy(), ["a", "b", "c"]
    first = containment.on_escalated(
        ScopeStatus(), escalated("a", "e1"), agents, {"a"}, sp, "o", 1.0
    )
    assert first and first.status.state == ScopeState.CONTAINED and first.targets == ["b", "c"]
    assert first.hold and first.hold.constraints == sp.limits and not first.hold.paused
    assert [i.kind for i in first.incidents] == ["service_contained"] and not first.escalations
    again = containment.on_escalated(
        first.status, escalated("a", "e1"), agents, {"a"}, sp, "o", 2.0
    )
    assert again and [i.event_id for i in again.incidents] == [i.event_id for i in first.incidents]
    second = containment.on_escalated(
        first.status, escalated("b", "e2"), agents, {"a", "b"}, sp, "o", 3.0
    )
    assert second and second.status.state == ScopeState.PAUSED and second.targets == agents
    assert second.hold and second.hold.paused
    assert second.escalations[0].degraded_agents == ["a", "b"]
    assert set(second.escalations[0].cause_ids) == {"e1", "e2"}
    third = containment.on_escalated(
        second.status, escalated("c", "e3"), agents, {"a", "b", "c"}, sp, "o", 4.0
    )
    assert third and third.incidents == [] and third.hold is None and third.targets == []
    healthy = containment.on_cleared(
        second.status, "s", agents, set(), "r", "operator resumed", 5.0
    )
    assert healthy and healthy.status.state == ScopeState.HEALTHY and healthy.hold is None
    assert healthy.targets == agents and healthy.incidents[0].kind == "service_restored"


# -- the organisation governor's budgets ---------------------------------------------------------


def budget(used: int, hour: int = 10) -> BudgetStatus:
    start = datetime(2025, 1, 1, hour, tzinfo=UTC)
    level, end = alert_level(used, 1000), start + timedelta(hours=1)
    scope, period = BudgetScope.ORGANIZATION, TokenPeriod.HOURLY
    return BudgetStatus(
        "org:o:hourly",
        scope,
        "o",
        period,
        1000,
        used,
        max(0, 1000 - used),
        used / 1000,
        level,
        start,
        end,
    )


def test_a_budget_warns_throttles_pauses_once_per_period_and_the_reset_lifts_it() -> None:
    op, agents, seen = OrgPolicy(), ["a", "b"], []
    mark: Mark | None = None
    for used in (500, 820, 830, 960, 1000, 1200):
        act = thresholds.plan(budget(used), mark, agents, op)
        if act is None:
            continue
        seen += [i.kind for i in act.incidents]
        if act.apply:
            seen.append("paused" if act.hold and act.hold.paused else "throttled")
        mark = act.mark
    assert seen == ["budget_warning", "budget_throttled", "throttled", "budget_exceeded", "paused"]
    reset = thresholds.plan(budget(0, hour=11), mark, agents, op)
    assert reset and reset.apply and reset.hold is None
    assert [i.kind for i in reset.incidents] == ["budget_reset"]
    assert reset.incidents[0].cause_ids == [
        thresholds.incident_id("org:o:hourly", "2025-01-01T10", "exceeded")
    ]
