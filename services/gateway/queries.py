"""Reads: the state, agents, services, incidents (paged and filtered) and budgets, from Redis."""

from __future__ import annotations

import json
from typing import Any

from helix.budgets import BudgetStatus
from helm.contracts import IncidentRecorded
from helm.state import AgentView
from services.gateway.context import Gateway
from services.gateway.errors import ApiError, not_found
from services.gateway.models import (
    Ack,
    BudgetOut,
    IncidentFilter,
    IncidentOut,
    IncidentPage,
    OrgOut,
    ServiceOut,
    StateOut,
)

SCAN_CHUNK = 200
SCAN_MAX = 5000
STREAM_PART_MAX = 2**64 - 1  # a Redis stream id is two unsigned 64-bit numbers


def is_stream_id(text: str) -> bool:
    """``<ms>-<seq>`` as Redis accepts it (the route's pattern has checked the form)."""
    ms, _, seq = text.partition("-")
    return int(ms) <= STREAM_PART_MAX and int(seq) <= STREAM_PART_MAX


async def agent_view(gw: Gateway, agent_id: str, *, instances: bool = False) -> AgentView:
    view = await gw.store.get_agent(agent_id)
    if view is None:
        raise not_found("agent", agent_id)
    if instances:
        view = view.model_copy(update={"instances": await gw.store.list_instances(agent_id)})
    return view


async def all_agents(gw: Gateway) -> dict[str, AgentView]:
    views = await gw.store.all_agents()
    pipe = gw.store.redis.pipeline(transaction=False)
    for view in views:
        pipe.hgetall(gw.store.key("instances", view.agent_id))
    rows = await pipe.execute()
    return {
        v.agent_id: v.model_copy(update={"instances": {k: json.loads(x) for k, x in r.items()}})
        for v, r in zip(views, rows, strict=True)
    }


def _service_name(hierarchy: dict[str, Any], service_id: str) -> str | None:
    for service in hierarchy.get("services") or []:
        if isinstance(service, dict) and service.get("id") == service_id:
            return str(service.get("name") or service_id)
    return None


async def service_agents(gw: Gateway, service_id: str) -> list[AgentView]:
    """The agents of a service; 404 when neither the hierarchy nor any agent knows it."""
    agents = [a for a in (await all_agents(gw)).values() if a.meta.service_id == service_id]
    if not agents and _service_name(await gw.store.get_hierarchy(), service_id) is None:
        raise not_found("service", service_id)
    return agents


async def service(gw: Gateway, service_id: str) -> ServiceOut:
    agents = await service_agents(gw, service_id)
    name = _service_name(await gw.store.get_hierarchy(), service_id) or service_id
    status = await gw.store.get_scope_status("service", service_id)
    return ServiceOut(service_id=service_id, name=name, status=status, agents=agents)


async def _acks(gw: Gateway, ids: list[str]) -> list[Ack | None]:
    if not ids:
        return []
    raw = await gw.store.redis.hmget(gw.store.key("acks"), ids)
    return [Ack.model_validate_json(r) if r else None for r in raw]


async def _with_acks(gw: Gateway, rows: list[tuple[str, IncidentRecorded]]) -> list[IncidentOut]:
    acks = await _acks(gw, [rid for rid, _ in rows])
    return [
        IncidentOut(id=rid, incident=inc, ack=ack)
        for (rid, inc), ack in zip(rows, acks, strict=True)
    ]


async def incidents(
    gw: Gateway, limit: int, before: str | None, where: IncidentFilter
) -> IncidentPage:
    """Newest first, filtered, scanning at most ``SCAN_MAX`` entries per page."""
    if before is not None and not is_stream_id(before):
        raise ApiError(422, f"before: {before!r} is not an incident id (each part < 2^64)")
    if before is not None and before.strip("0-") == "":
        return IncidentPage(incidents=[], next_before=None)  # nothing comes before 0-0
    found: list[tuple[str, IncidentRecorded]] = []
    cursor, scanned = before, 0
    while len(found) < limit and scanned < SCAN_MAX:
        rows = await gw.store.incidents(SCAN_CHUNK, cursor)
        if not rows:
            cursor = None
            break
        for rid, incident in rows:
            cursor, scanned = rid, scanned + 1
            if where.matches(incident):
                found.append((rid, incident))
                if len(found) == limit:
                    break
        if len(rows) < SCAN_CHUNK and len(found) < limit:
            cursor = None
            break
    return IncidentPage(incidents=await _with_acks(gw, found), next_before=cursor)


def _last_intervention(items: list[IncidentOut]) -> IncidentOut | None:
    return next((i for i in items if i.incident.state_to or i.incident.kind != "note"), None)


def org_of(hierarchy: dict[str, Any]) -> tuple[str, str]:
    """The organisation's id and name: ``default`` until an agent joins, as governors read it."""
    org = hierarchy.get("org")
    if not isinstance(org, dict) or not org.get("id"):
        return "default", "default"
    return str(org["id"]), str(org.get("name") or org["id"])


async def org(gw: Gateway, hierarchy: dict[str, Any]) -> OrgOut:
    org_id, name = org_of(hierarchy)
    status = await gw.store.get_scope_status("org", org_id)
    return OrgOut(org_id=org_id, name=name, status=status)


def service_ids(hierarchy: dict[str, Any], agents: dict[str, AgentView]) -> list[str]:
    """Every service the hierarchy or an agent names, sorted."""
    named = {
        str(s["id"]) for s in hierarchy.get("services") or [] if isinstance(s, dict) and s.get("id")
    }
    return sorted(named | {a.meta.service_id for a in agents.values()})


async def state(gw: Gateway) -> StateOut:
    recent = await _with_acks(gw, await gw.store.incidents(gw.settings.recent_incidents))
    hierarchy = await gw.store.get_hierarchy()
    agents = await all_agents(gw)
    return StateOut(
        org=await org(gw, hierarchy),
        services=await gw.store.get_scope_statuses("service", service_ids(hierarchy, agents)),
        hierarchy=hierarchy,
        agents=agents,
        incidents=recent,
        last_intervention=_last_intervention(recent),
    )


async def series(gw: Gateway, agent_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {a: await gw.store.get_series(a, gw.settings.series_points) for a in agent_ids}


def _budget(status: BudgetStatus, now: float) -> BudgetOut:
    resets_at = status.resets_at.timestamp()
    return BudgetOut(
        budget_id=status.budget_id,
        scope=status.scope.value,
        scope_id=status.scope_id,
        period=status.period.value,
        limit=status.limit,
        used=status.used,
        remaining=status.remaining,
        utilization=status.utilization,
        alert_level=status.alert_level.value,
        resets_at=resets_at,
        resets_in_s=max(0.0, resets_at - now),
    )


async def budgets(gw: Gateway) -> list[BudgetOut]:
    now = gw.clock.time()
    return [_budget(s, now) for s in await gw.budgets.check_budget()]
