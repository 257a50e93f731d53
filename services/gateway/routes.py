"""The REST routes. Reads need the read permission; every change needs the operator token."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from helm import contracts as c
from helm.contracts import Scope, Severity
from helm.state import AgentView
from services.gateway import handlers, queries
from services.gateway.auth import fingerprint
from services.gateway.chat import retry_after
from services.gateway.context import Gateway
from services.gateway.errors import ApiError
from services.gateway.models import (
    Ack,
    AckRequest,
    AnomalyRequest,
    BudgetIn,
    BudgetOut,
    CommandAccepted,
    IncidentFilter,
    IncidentPage,
    QueryAnswer,
    QueryRequest,
    Reason,
    ServiceOut,
    StateOut,
)

ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"  # an incident's id in the Redis stream (ASCII digits)
_bearer = HTTPBearer(auto_error=False, description="operator (or read) token")
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gw
    return gw


GW = Annotated[Gateway, Depends(gateway)]


def _token(creds: HTTPAuthorizationCredentials | None) -> str | None:
    return creds.credentials if creds is not None else None


async def reader(gw: GW, creds: Creds) -> None:
    gw.guard.reader(_token(creds))


async def operator(gw: GW, creds: Creds, request: Request) -> str:
    return gw.guard.operator(_token(creds), request.headers.get("x-helm-operator"))


Actor = Annotated[str, Depends(operator)]
AgentId = Annotated[str, Path(pattern=ID, description="agent id")]
ServiceId = Annotated[str, Path(pattern=ID, description="service id")]
OptReason = Annotated[Reason | None, Body()]
router = APIRouter(dependencies=[Depends(reader)])
ACCEPTED = 202


def _why(body: Reason | None) -> str:
    return body.reason if body is not None else ""


@router.get(
    "/state",
    tags=["state"],
    summary="Hierarchy, every agent, recent incidents",
    response_model=StateOut,
    responses={200: {"content": {"application/json": {}}}},
)
async def get_state(gw: GW) -> Response:
    return Response(await gw.snapshot.get(), media_type="application/json")


@router.get("/agents", tags=["agents"], summary="Every agent with its state and metrics")
async def list_agents(gw: GW) -> list[AgentView]:
    return list((await queries.all_agents(gw)).values())


@router.get("/agents/{agent_id}", tags=["agents"], summary="One agent")
async def get_agent(gw: GW, agent_id: AgentId) -> AgentView:
    return await queries.agent_view(gw, agent_id, instances=True)


@router.get("/agents/{agent_id}/instances", tags=["agents"], summary="An agent's instances")
async def get_instances(gw: GW, agent_id: AgentId) -> dict[str, dict[str, object]]:
    return (await queries.agent_view(gw, agent_id, instances=True)).instances


@router.get("/agents/{agent_id}/series", tags=["agents"], summary="Recent chart points")
async def get_series(gw: GW, agent_id: AgentId) -> list[dict[str, object]]:
    await queries.agent_view(gw, agent_id)
    return (await queries.series(gw, [agent_id]))[agent_id]


@router.post(
    "/agents/{agent_id}/pause", tags=["agents"], summary="Pause an agent", status_code=ACCEPTED
)
async def pause_agent(
    gw: GW, actor: Actor, agent_id: AgentId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.pause(gw, agent_id, actor, _why(body))


@router.post(
    "/agents/{agent_id}/resume", tags=["agents"], summary="Resume an agent", status_code=ACCEPTED
)
async def resume_agent(
    gw: GW, actor: Actor, agent_id: AgentId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.resume(gw, agent_id, actor, _why(body))


@router.post(
    "/agents/{agent_id}/clear-constraints",
    tags=["agents"],
    summary="Lift constraints",
    status_code=ACCEPTED,
)
async def clear_constraints(
    gw: GW, actor: Actor, agent_id: AgentId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.clear_constraints(gw, agent_id, actor, _why(body))


@router.post(
    "/simulate/anomaly/{agent_id}",
    tags=["agents"],
    summary="Inject an anomaly",
    status_code=ACCEPTED,
)
async def simulate_anomaly(
    gw: GW, actor: Actor, agent_id: AgentId, body: Annotated[AnomalyRequest | None, Body()] = None
) -> CommandAccepted:
    return await handlers.inject_anomaly(gw, agent_id, actor, body or AnomalyRequest())


@router.delete(
    "/simulate/anomaly/{agent_id}",
    tags=["agents"],
    summary="Clear an anomaly",
    status_code=ACCEPTED,
)
async def clear_anomaly(
    gw: GW, actor: Actor, agent_id: AgentId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.clear_anomaly(gw, agent_id, actor, _why(body))


@router.post("/agent/{agent_id}/query", tags=["chat"], summary="Ask an agent (rate limited)")
async def query_agent(
    gw: GW, creds: Creds, request: Request, agent_id: AgentId, body: QueryRequest
) -> QueryAnswer:
    token = _token(creds)
    client = fingerprint(token) if token else (request.client.host if request.client else "?")
    wait = gw.limiter.take(client)
    if wait > 0:
        gw.metrics.chat.labels(agent_id, "rate_limited").inc()
        raise ApiError(
            429, f"too many chat queries; retry in {wait:.1f} s", {"Retry-After": retry_after(wait)}
        )
    await queries.agent_view(gw, agent_id)
    await gw.ensure_topic(c.tasks_topic(agent_id))
    started = time.monotonic()
    timeout = gw.settings.chat_timeout_s
    request_id, answer = await gw.waiter.ask(gw.bus, agent_id, body.query, timeout)
    if answer is None:
        gw.metrics.chat.labels(agent_id, "timeout").inc()
        raise ApiError(
            504,
            f"agent {agent_id!r} did not answer within {timeout:g} s "
            f"(request {request_id}); is a worker for it running?",
        )
    gw.metrics.chat.labels(agent_id, answer.outcome).inc()
    gw.metrics.chat_latency.labels(agent_id).observe(time.monotonic() - started)
    return QueryAnswer(
        agent_id=agent_id,
        request_id=request_id,
        answer=answer.output,
        outcome=answer.outcome,
        provider=answer.provider,
        latency_ms=answer.latency_ms,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
    )


@router.get("/services/{service_id}", tags=["services"], summary="A service and its agents")
async def get_service(gw: GW, service_id: ServiceId) -> ServiceOut:
    return await queries.service(gw, service_id)


@router.post(
    "/services/{service_id}/pause",
    tags=["services"],
    summary="Pause every agent",
    status_code=ACCEPTED,
)
async def pause_service(
    gw: GW, actor: Actor, service_id: ServiceId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.pause_service(gw, service_id, actor, _why(body))


@router.post(
    "/services/{service_id}/resume",
    tags=["services"],
    summary="Resume its agents",
    status_code=ACCEPTED,
)
async def resume_service(
    gw: GW, actor: Actor, service_id: ServiceId, body: OptReason = None
) -> CommandAccepted:
    return await handlers.resume_service(gw, service_id, actor, _why(body))


@router.get("/incidents", tags=["incidents"], summary="Incidents, newest first, paged")
async def list_incidents(
    gw: GW,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(pattern=STREAM_ID)] = None,
    scope: Scope | None = None,
    scope_id: str | None = None,
    severity: Severity | None = None,
    since: float | None = None,
    until: float | None = None,
) -> IncidentPage:
    where = IncidentFilter(
        scope=scope, scope_id=scope_id, severity=severity, since=since, until=until
    )
    return await queries.incidents(gw, limit, before, where)


@router.post("/incidents/{incident_id}/ack", tags=["incidents"], summary="Acknowledge")
async def ack_incident(
    gw: GW,
    actor: Actor,
    incident_id: Annotated[str, Path(pattern=STREAM_ID)],
    body: Annotated[AckRequest | None, Body()] = None,
) -> Ack:
    return await handlers.acknowledge(gw, incident_id, actor, body.note if body else "")


async def _budget_scope_id(gw: Gateway, body: BudgetIn) -> str:
    """An organisation budget without an id is the organisation of this deployment's hierarchy."""
    if body.scope_id:
        return body.scope_id
    if body.scope.value in ("organization", "org"):
        org = (await gw.store.get_hierarchy()).get("org") or {}
        if isinstance(org, dict) and org.get("id"):
            return str(org["id"])
    raise ApiError(422, f"a {body.scope.value} budget needs a scope_id")


@router.post(
    "/org/pause", tags=["org"], summary="Kill switch: pause every agent", status_code=ACCEPTED
)
async def org_pause(gw: GW, actor: Actor, body: OptReason = None) -> CommandAccepted:
    return await handlers.kill_switch(gw, actor, _why(body), engage=True)


@router.post("/org/resume", tags=["org"], summary="Release the kill switch", status_code=ACCEPTED)
async def org_resume(gw: GW, actor: Actor, body: OptReason = None) -> CommandAccepted:
    return await handlers.kill_switch(gw, actor, _why(body), engage=False)


@router.get("/budgets", tags=["budgets"], summary="Token budgets and their use")
async def list_budgets(gw: GW) -> list[BudgetOut]:
    return await queries.budgets(gw)


@router.put("/budgets", tags=["budgets"], summary="Set a token budget")
async def put_budget(gw: GW, actor: Actor, body: BudgetIn) -> list[BudgetOut]:
    await gw.budgets.set_budget(
        body.amount, body.period, body.scope, await _budget_scope_id(gw, body)
    )
    gw.metrics.commands.labels("set_budget").inc()
    return await queries.budgets(gw)
