"""What the runtime tells operators: Helix's events and scaling decisions as incidents.

Pure functions: an event or a decision in, an ``IncidentRecorded`` (or nothing) out. Every
message names the instance or agent, what happened and why (the reason Helix or the scaler gave).
"""

from __future__ import annotations

from helix import EventKind, RuntimeEvent, ScalingDecision
from helm import contracts as c

LIVENESS_CHECK = "heartbeat"


def _plain(reason: str) -> str:
    """Helix quotes a failed check's exception; operators need only its message."""
    return reason.replace("raised NoHeartbeat: ", "")


def _instance(
    event: RuntimeEvent, kind: str, severity: c.Severity, text: str
) -> c.IncidentRecorded:
    return c.IncidentRecorded(
        severity=severity,
        scope="instance",
        scope_id=event.instance_id or event.agent_id,
        kind=kind,
        actor="runtime",
        message=f"instance {event.instance_id} of {event.agent_id} {text}",
    )


def _exited(event: RuntimeEvent) -> c.IncidentRecorded:
    code = event.detail.get("exit_code")
    why = "" if event.reason.startswith("exited with code") else f": {_plain(event.reason)}"
    return _instance(event, "instance_exited", "warning", f"exited with code {code}{why}")


def _restarted(event: RuntimeEvent, kind: str, severity: c.Severity) -> c.IncidentRecorded:
    d = event.detail
    text = (
        f"restarted as pid {d.get('pid')} (restart {d.get('restart_count')}, after "
        f"{float(d.get('backoff') or 0):g} s back-off): {_plain(event.reason)}"
    )
    return _instance(event, kind, severity, text)


def incident_for(event: RuntimeEvent, pid: int | None = None) -> c.IncidentRecorded | None:
    """The incident an operator should see for a Helix event, if any."""
    kind = event.kind
    if kind is EventKind.INSTANCE_EXITED:
        return _exited(event)
    if kind is EventKind.INSTANCE_RESTARTED:
        return _restarted(event, "instance_restarted", "info")
    if kind is EventKind.INSTANCE_OOM_RESTARTED:
        return _restarted(event, "instance_oom_restarted", "warning")
    d = event.detail
    dead = d.get("check") == LIVENESS_CHECK and d.get("status") == "unhealthy"
    if kind is EventKind.HEALTH_CHANGED and dead:
        why = _plain(str(d.get("error") or "no heartbeat"))
        return _instance(
            event, "instance_dead", "warning", f"(pid {pid}) is dead: {why}; replacing it"
        )
    return None


def scaled(decision: ScalingDecision, reached: int) -> c.IncidentRecorded:
    """A change of an agent's instance count, with the metric and value that caused it."""
    text = (
        f"scaled {decision.target_id} from {decision.current} to {reached} instances: "
        f"{decision.reason}"
    )
    if reached != decision.desired:
        text += f" (wanted {decision.desired}; limited by max_workers)"
    return c.IncidentRecorded(
        severity="info",
        scope="agent",
        scope_id=decision.target_id,
        kind="scaled",
        actor="runtime",
        message=text,
        state_from=str(decision.current),
        state_to=str(reached),
    )
