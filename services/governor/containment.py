"""The service governor's decisions, pure: escalations in, containment out.

healthy --an agent degraded--> contained: the service-wide limits go on its other agents
contained --more than ``pause_share`` of its agents degraded--> paused: every agent paused, and
the service escalated to the organisation (``ServiceEscalated``)
contained / paused --no agent degraded any more (operators resumed them)--> healthy, limits lifted
An episode runs from the first escalation to the return to healthy; its incidents and its
escalation have ids derived from the episode, so each happens once per episode however often the
agents of the service escalate or an event is redelivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from helm import contracts as c
from helm.config import ServicePolicy
from helm.state import ScopeState, ScopeStatus
from services.governor.holds import Hold
from services.governor.machine import derived_id, incident

ACTOR = "governor.service"


def source(service: str) -> str:
    """The name of a service's hold on its agents."""
    return f"service:{service}"


@dataclass
class Containment:
    """A service decision: its new status, and the hold to put on (or lift from) ``targets``."""

    status: ScopeStatus
    hold: Hold | None = None  # None: lift the service's hold from the targets
    targets: list[str] = field(default_factory=list)
    incidents: list[c.IncidentRecorded] = field(default_factory=list)
    escalations: list[c.ServiceEscalated] = field(default_factory=list)


def _limits_text(p: ServicePolicy) -> str:
    lim = p.limits
    parts = [
        f"{lim.rate_limit_per_min:g} runs/min" if lim.rate_limit_per_min else "",
        f"batch {lim.batch_size}" if lim.batch_size else "",
        f"{lim.max_retries} retries" if lim.max_retries is not None else "",
    ]
    return ", ".join(p for p in parts if p) or "no limits"


def on_escalated(
    svc: ScopeStatus,
    e: c.AgentEscalated,
    agents: list[str],
    degraded: set[str],
    p: ServicePolicy,
    org_id: str,
    now: float,
) -> Containment | None:
    """Contain a service one of whose agents was degraded; pause it when too many are."""
    bad = sorted(degraded | {e.agent_id})
    members = sorted(set(agents) | set(bad))
    episode = svc.episode if svc.state != ScopeState.HEALTHY and svc.episode else e.event_id
    causes = list(dict.fromkeys([e.event_id, *e.cause_ids[:10]]))
    share = len(bad) / len(members)
    if svc.state == ScopeState.PAUSED:
        return (
            Containment(svc.model_copy(update={"degraded": bad})) if bad != svc.degraded else None
        )
    if share > p.pause_share:
        return _pause(svc, e, members, bad, p, org_id, episode, causes, now)
    siblings = [a for a in members if a not in bad]
    why = (
        f"agent {e.agent_id} degraded ({len(bad)} of {len(members)} agents): "
        f"service-wide limits ({_limits_text(p)}) on {', '.join(siblings) or 'no other agent'}"
    )
    status = ScopeStatus(
        state=ScopeState.CONTAINED,
        since=svc.since if svc.state == ScopeState.CONTAINED else now,
        reason=why,
        actor=ACTOR,
        episode=episode,
        degraded=bad,
        cause_ids=causes,
    )
    hold = Hold(
        constraints=p.limits,
        actor=ACTOR,
        reason=f"service {e.service_id} contained: {why}",
        cause_ids=causes,
    )
    msg = f"service {e.service_id} contained: {why}"
    incidents = [
        incident(
            "service",
            e.service_id,
            episode,
            "service_contained",
            msg,
            "warning",
            svc,
            ScopeState.CONTAINED,
            causes,
        )
    ]
    return Containment(status, hold, siblings, incidents)


def _pause(
    svc: ScopeStatus,
    e: c.AgentEscalated,
    members: list[str],
    bad: list[str],
    p: ServicePolicy,
    org_id: str,
    episode: str,
    causes: list[str],
    now: float,
) -> Containment:
    why = (
        f"{len(bad)} of {len(members)} agents degraded ({', '.join(bad)}), more than "
        f"{p.pause_share:.0%}: every agent paused ({', '.join(members)})"
    )
    status = ScopeStatus(
        state=ScopeState.PAUSED,
        since=now,
        reason=why,
        actor=ACTOR,
        episode=episode,
        degraded=bad,
        cause_ids=causes,
    )
    reason = f"service {e.service_id} paused: {why}"
    hold = Hold(paused=True, constraints=p.limits, actor=ACTOR, reason=reason, cause_ids=causes)
    escalated = c.ServiceEscalated(
        event_id=derived_id(episode, "service-escalate"),
        service_id=e.service_id,
        org_id=org_id,
        degraded_agents=bad,
        reason=reason,
        cause_ids=list(dict.fromkeys([episode, e.event_id])),
    )
    record = incident(
        "service",
        e.service_id,
        episode,
        "service_paused",
        f"{reason}; escalated to the organisation",
        "critical",
        svc,
        ScopeState.PAUSED,
        causes,
    )
    return Containment(status, hold, members, [record], [escalated])


def on_cleared(
    svc: ScopeStatus,
    service: str,
    agents: list[str],
    degraded: set[str],
    cause: str,
    note: str,
    now: float,
) -> Containment | None:
    """Lift containment once no agent of the service is degraded any more (``note``: why)."""
    if svc.state == ScopeState.HEALTHY:
        return None
    if degraded:
        bad = sorted(degraded)
        return (
            Containment(svc.model_copy(update={"degraded": bad})) if bad != svc.degraded else None
        )
    why = f"no agent of service {service} is degraded any more ({note}): service-wide limits lifted"
    status = ScopeStatus(state=ScopeState.HEALTHY, since=now, reason=why, actor=ACTOR)
    msg = f"service {service} healthy again: {why}"
    record = incident(
        "service",
        service,
        svc.episode,
        "service_restored",
        msg,
        "info",
        svc,
        ScopeState.HEALTHY,
        [cause],
    )
    return Containment(status, None, sorted(agents), [record])
