"""The agent-level governor's state machine of DESIGN.md."""

from __future__ import annotations

from helm import contracts as c
from helm.config import GovernorConfig
from helm.state import AgentState, Constraints, Status
from services.governor import machine

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
    from helm.state import Control

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
