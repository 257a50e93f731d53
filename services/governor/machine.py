"""The agent-level governor's state machine (DESIGN.md), pure: state and event in, decision out.

healthy --drift--> paused --after a delay--> recovering (probe runs under tight constraints)
recovering --K clean runs--> healthy;  recovering --drift--> paused again (one failed attempt)
after N failed attempts --> degraded, and the agent is escalated to the service governor.
Every decision carries its incidents and commands with ids derived from the cause, so handling
the same event twice produces the same ids and the dedupe downstream makes it a no-op.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from helm import contracts as c
from helm.config import GovernorConfig
from helm.state import AgentState, Constraints, Control, Status

ACTOR = "governor.agent"
NS = uuid.UUID("0b7f3f7e-3c4e-4f4e-9d55-5a0f7a6b9c11")


def derived_id(cause: str, what: str) -> str:
    return uuid.uuid5(NS, f"{cause}:{what}").hex


@dataclass
class Decision:
    status: Status
    control: Control | None = None
    commands: list[c.ControlCommand] = field(default_factory=list)
    incidents: list[c.IncidentRecorded] = field(default_factory=list)
    escalations: list[c.AgentEscalated] = field(default_factory=list)


class _Stated(Protocol):
    @property
    def state(self) -> Enum: ...


def incident(
    scope: c.Scope,
    scope_id: str,
    cause: str,
    kind: str,
    msg: str,
    sev: c.Severity,
    frm: _Stated,
    to: Enum,
    causes: list[str],
    actor: str | None = None,
) -> c.IncidentRecorded:
    """An incident of an agent's or a service's governor; its id is derived from the cause."""
    what = "incident" if scope == "agent" else f"{scope}-incident"
    return c.IncidentRecorded(
        event_id=derived_id(cause, f"{what}:{kind}"),
        severity=sev,
        scope=scope,
        scope_id=scope_id,
        kind=kind,
        message=msg,
        actor=actor or f"governor.{scope}",
        cause_ids=causes,
        state_from=frm.state.value,
        state_to=to.value,
    )


def _constrain(
    agent: str, cause: str, limits: Constraints, reason: str, actor: str = ACTOR
) -> c.ConstrainAgent:
    return c.ConstrainAgent(
        event_id=derived_id(cause, "constrain"),
        agent_id=agent,
        actor=actor,
        reason=reason,
        cause_ids=[cause],
        rate_limit_per_min=limits.rate_limit_per_min,
        batch_size=limits.batch_size,
        max_retries=limits.max_retries,
    )


def on_drift(st: Status, d: c.DriftDetected, p: GovernorConfig, now: float) -> Decision | None:
    """Pause a healthy agent; count a failed attempt for a recovering one."""
    what = f"{d.rule}: {d.metric} {d.observed:g} vs threshold {d.threshold:g}"
    causes = [d.event_id, *d.evidence_run_ids[:10]]
    if st.state == AgentState.HEALTHY:
        return _pause(
            st, d.agent_id, d.event_id, p, now, attempts=0, why=f"drift {what}", causes=causes
        )
    if st.state != AgentState.RECOVERING:
        return None
    attempts = st.attempts + 1
    if attempts >= p.max_attempts:
        return _degrade(st, d, attempts, what, causes, now)
    return _pause(
        st,
        d.agent_id,
        d.event_id,
        p,
        now,
        attempts,
        f"recovery attempt {attempts} failed: {what}",
        causes,
    )


def _pause(
    st: Status,
    agent: str,
    cause: str,
    p: GovernorConfig,
    now: float,
    attempts: int,
    why: str,
    causes: list[str],
) -> Decision:
    delay = p.recovery_delay_s * (attempts + 1)
    status = Status(
        state=AgentState.PAUSED,
        since=now,
        reason=why,
        attempts=attempts,
        recover_at=now + delay,
        episode=st.episode or cause,
        cause_ids=causes,
    )
    control = Control(paused=True, constraints=p.tight, actor=ACTOR, reason=why, updated=now)
    msg = f"paused {agent}: {why}; limits tightened, recovery attempt in {delay:g} s"
    return Decision(
        status,
        control,
        commands=[
            c.PauseAgent(
                event_id=derived_id(cause, "pause"),
                agent_id=agent,
                actor=ACTOR,
                reason=why,
                cause_ids=causes,
            ),
            _constrain(agent, cause, p.tight, why),
        ],
        incidents=[
            incident("agent", agent, cause, "paused", msg, "warning", st, AgentState.PAUSED, causes)
        ],
    )


def _degrade(
    st: Status, d: c.DriftDetected, attempts: int, what: str, causes: list[str], now: float
) -> Decision:
    why = f"{attempts} recovery attempts failed (last: {what})"
    status = Status(
        state=AgentState.DEGRADED,
        since=now,
        reason=why,
        attempts=attempts,
        episode=st.episode,
        cause_ids=causes,
    )
    control = Control(paused=True, actor=ACTOR, reason=why, updated=now)
    return Decision(
        status,
        control,
        commands=[
            c.PauseAgent(
                event_id=derived_id(d.event_id, "pause"),
                agent_id=d.agent_id,
                actor=ACTOR,
                reason=why,
                cause_ids=causes,
            )
        ],
        incidents=[
            incident(
                "agent",
                d.agent_id,
                d.event_id,
                "degraded",
                f"degraded {d.agent_id}: {why}; escalated to the service governor",
                "critical",
                st,
                AgentState.DEGRADED,
                causes,
            )
        ],
        escalations=[
            c.AgentEscalated(
                event_id=derived_id(d.event_id, "escalate"),
                agent_id=d.agent_id,
                service_id=d.service_id,
                attempts=attempts,
                reason=why,
                cause_ids=causes,
            )
        ],
    )


def on_tick(agent: str, st: Status, p: GovernorConfig, now: float) -> Decision | None:
    """Start a recovery attempt once a paused agent's delay is over."""
    if st.state != AgentState.PAUSED or st.recover_at is None or now < st.recover_at:
        return None
    cause = derived_id(st.episode, f"recover:{st.attempts}")
    why = f"recovery attempt {st.attempts + 1}: probe runs under tightened limits"
    status = Status(
        state=AgentState.RECOVERING,
        since=now,
        reason=why,
        attempts=st.attempts,
        episode=st.episode,
        cause_ids=st.cause_ids,
    )
    control = Control(
        paused=False, probe=True, constraints=p.tight, actor=ACTOR, reason=why, updated=now
    )
    return Decision(
        status,
        control,
        commands=[
            _constrain(agent, cause, p.tight, why),
            c.ResumeAgent(
                event_id=derived_id(cause, "resume"),
                agent_id=agent,
                actor=ACTOR,
                reason=why,
                probe=True,
                cause_ids=st.cause_ids,
            ),
        ],
        incidents=[
            incident(
                "agent",
                agent,
                cause,
                "recovering",
                f"{agent}: {why}",
                "info",
                st,
                AgentState.RECOVERING,
                st.cause_ids,
            )
        ],
    )


def on_run(st: Status, run: c.RunCompleted, p: GovernorConfig, now: float) -> Decision | None:
    """Count consecutive clean probe runs of a recovering agent; K of them make it healthy.

    Clean means: succeeded, needed no retry and rejected no input. Any other run starts the
    count again, so an agent whose anomaly persists cannot drift back to healthy on luck.
    """
    if st.state != AgentState.RECOVERING or run.ts < st.since:
        return None
    if run.outcome != "ok" or run.retries or run.malformed:
        return Decision(st.model_copy(update={"clean_runs": 0})) if st.clean_runs else None
    clean = st.clean_runs + 1
    if clean < p.clean_runs:
        return Decision(st.model_copy(update={"clean_runs": clean}))
    why = f"{clean} clean runs after recovery attempt {st.attempts + 1}"
    status = Status(state=AgentState.HEALTHY, since=now, reason=why)
    control = Control(paused=False, actor=ACTOR, reason=why, updated=now)
    return Decision(
        status,
        control,
        commands=[_constrain(run.agent_id, run.event_id, Constraints(), why)],
        incidents=[
            incident(
                "agent",
                run.agent_id,
                run.event_id,
                "recovered",
                f"{run.agent_id} healthy again: {why}; limits lifted",
                "info",
                st,
                AgentState.HEALTHY,
                [run.run_id],
            )
        ],
    )


def on_operator(
    agent: str, st: Status, ctl: Control, cmd: c.ControlCommand, now: float
) -> Decision | None:
    """An operator's command (actor ``operator:...``): obeyed as given, recorded with its actor."""
    who, why = cmd.actor, cmd.reason or "operator action"
    note = f"{who}: {type(cmd).__name__} {agent}" + (f" ({cmd.reason})" if cmd.reason else "")
    if isinstance(cmd, c.PauseAgent):
        status = Status(
            state=AgentState.PAUSED,
            since=now,
            reason=f"paused by {who}: {why}",
            attempts=st.attempts,
        )
        control = ctl.model_copy(
            update={"paused": True, "probe": False, "actor": who, "reason": why, "updated": now}
        )
        to = AgentState.PAUSED
    elif isinstance(cmd, c.ResumeAgent):
        status = Status(state=AgentState.HEALTHY, since=now, reason=f"resumed by {who}: {why}")
        control = ctl.model_copy(
            update={"paused": False, "probe": False, "actor": who, "reason": why, "updated": now}
        )
        to = AgentState.HEALTHY
    elif isinstance(cmd, c.ConstrainAgent):
        limits = Constraints(
            rate_limit_per_min=cmd.rate_limit_per_min,
            batch_size=cmd.batch_size,
            max_retries=cmd.max_retries,
        )
        status, to = st, st.state
        control = ctl.model_copy(
            update={"constraints": limits, "actor": who, "reason": why, "updated": now}
        )
    elif isinstance(cmd, c.InjectAnomaly | c.ClearAnomaly):
        status, control, to = st, None, st.state
    else:
        return None
    record = incident(
        "agent",
        agent,
        cmd.event_id,
        f"operator:{type(cmd).__name__}",
        note,
        "info",
        st,
        to,
        [cmd.event_id],
        who,
    )
    return Decision(status, control, incidents=[record])
