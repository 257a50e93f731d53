"""Operator commands: check the transition is possible, then publish on ``helm.control``.

The gateway does not change an agent's state itself: the governor consumes the command, records
the transition and its incident. The one exception is an injected anomaly, which is written to
Redis first (level-triggered truth a restarting worker reads) and then announced on Kafka.
"""

from __future__ import annotations

import json

from helm import contracts as c
from helm.state import AgentState, AgentView, Anomaly
from services.gateway.context import Gateway
from services.gateway.errors import ApiError, not_found
from services.gateway.models import Ack, AnomalyRequest, CommandAccepted
from services.gateway.queries import agent_view, is_stream_id, org_of, service_agents

PAUSED_LIKE = (AgentState.PAUSED, AgentState.DEGRADED)


def _is_paused(view: AgentView) -> bool:
    return view.control.paused or view.status.state == AgentState.PAUSED


def _resumable(view: AgentView) -> bool:
    return view.control.paused or view.status.state in PAUSED_LIKE


async def _send(
    gw: Gateway, action: str, commands: list[c.ControlCommand], actor: str
) -> CommandAccepted:
    for command in commands:
        await gw.publish(c.CONTROL, command)
    gw.metrics.commands.labels(action).inc(len(commands))
    return CommandAccepted(
        action=action,
        agent_ids=[m.agent_id for m in commands],
        actor=actor,
        event_ids=[m.event_id for m in commands],
    )


async def pause(gw: Gateway, agent_id: str, actor: str, reason: str) -> CommandAccepted:
    view = await agent_view(gw, agent_id)
    if _is_paused(view):
        raise ApiError(409, f"agent {agent_id!r} is already paused")
    command = c.PauseAgent(agent_id=agent_id, actor=actor, reason=reason or "paused by operator")
    return await _send(gw, "pause", [command], actor)


async def resume(gw: Gateway, agent_id: str, actor: str, reason: str) -> CommandAccepted:
    view = await agent_view(gw, agent_id)
    if not _resumable(view):
        raise ApiError(
            409,
            f"agent {agent_id!r} is {view.status.state.value}, not paused or degraded: "
            "there is nothing to resume",
        )
    command = c.ResumeAgent(agent_id=agent_id, actor=actor, reason=reason or "resumed by operator")
    return await _send(gw, "resume", [command], actor)


async def clear_constraints(gw: Gateway, agent_id: str, actor: str, reason: str) -> CommandAccepted:
    await agent_view(gw, agent_id)
    command = c.ConstrainAgent(
        agent_id=agent_id, actor=actor, reason=reason or "constraints cleared by operator"
    )
    return await _send(gw, "clear_constraints", [command], actor)


async def inject_anomaly(
    gw: Gateway, agent_id: str, actor: str, body: AnomalyRequest
) -> CommandAccepted:
    await agent_view(gw, agent_id)
    until = gw.clock.time() + body.duration_s
    anomaly = Anomaly(
        until=until, batch_multiplier=body.batch_multiplier, malformed_ratio=body.malformed_ratio
    )
    await gw.store.set_anomaly(agent_id, anomaly)
    command = c.InjectAnomaly(
        agent_id=agent_id,
        actor=actor,
        reason=body.reason or "anomaly simulated by operator",
        duration_s=body.duration_s,
        batch_multiplier=body.batch_multiplier,
        malformed_ratio=body.malformed_ratio,
    )
    return await _send(gw, "inject_anomaly", [command], actor)


async def clear_anomaly(gw: Gateway, agent_id: str, actor: str, reason: str) -> CommandAccepted:
    view = await agent_view(gw, agent_id)
    if view.anomaly is None:
        raise ApiError(409, f"agent {agent_id!r} has no anomaly to clear")
    await gw.store.set_anomaly(agent_id, None)
    command = c.ClearAnomaly(agent_id=agent_id, actor=actor, reason=reason or "anomaly cleared")
    return await _send(gw, "clear_anomaly", [command], actor)


async def pause_service(gw: Gateway, service_id: str, actor: str, reason: str) -> CommandAccepted:
    agents = [a for a in await service_agents(gw, service_id) if not _is_paused(a)]
    if not agents:
        raise ApiError(409, f"every agent of service {service_id!r} is already paused")
    why = reason or f"service {service_id} paused by operator"
    commands: list[c.ControlCommand] = [
        c.PauseAgent(agent_id=a.agent_id, actor=actor, reason=why) for a in agents
    ]
    return await _send(gw, "pause", commands, actor)


async def resume_service(gw: Gateway, service_id: str, actor: str, reason: str) -> CommandAccepted:
    agents = [a for a in await service_agents(gw, service_id) if _resumable(a)]
    if not agents:
        raise ApiError(409, f"no agent of service {service_id!r} is paused or degraded")
    why = reason or f"service {service_id} resumed by operator"
    commands: list[c.ControlCommand] = [
        c.ResumeAgent(agent_id=a.agent_id, actor=actor, reason=why) for a in agents
    ]
    return await _send(gw, "resume", commands, actor)


async def kill_switch(gw: Gateway, actor: str, reason: str, *, engage: bool) -> CommandAccepted:
    """Pause (or release) every agent of the organisation; the governor records and enforces it."""
    org_id, _ = org_of(await gw.store.get_hierarchy())
    engaged = (await gw.store.get_scope_status("org", org_id)).state.value == "paused"
    if engage == engaged:
        raise ApiError(409, f"the kill switch is already {'engaged' if engaged else 'released'}")
    why = reason or (
        "kill switch engaged by operator" if engage else "kill switch released by operator"
    )
    kind = c.PauseAgent if engage else c.ResumeAgent
    command: c.ControlCommand = kind(agent_id=c.EVERY_AGENT, actor=actor, reason=why)
    return await _send(gw, "kill_switch" if engage else "release", [command], actor)


async def acknowledge(gw: Gateway, incident_id: str, actor: str, note: str) -> Ack:
    """Record who acknowledged an incident (once: a second ack returns the first)."""
    if not is_stream_id(incident_id):
        raise not_found("incident", incident_id)
    rows = await gw.store.redis.xrange(gw.store.key("incidents"), incident_id, incident_id)
    if not rows:
        raise not_found("incident", incident_id)
    ack = Ack(actor=actor, ts=gw.clock.time(), note=note)
    created = await gw.store.redis.hsetnx(gw.store.key("acks"), incident_id, ack.model_dump_json())
    if not created:
        return Ack.model_validate_json(await gw.store.redis.hget(gw.store.key("acks"), incident_id))
    gw.metrics.commands.labels("ack").inc()
    payload = {"incident_id": incident_id, "ack": json.loads(ack.model_dump_json())}
    await gw.store.publish_update("ack", payload)
    return ack
