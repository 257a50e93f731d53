"""Request and response bodies of the REST API; they are its OpenAPI documentation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from helix.budgets.models import BudgetScope
from helix.periods import TokenPeriod
from helm.contracts import IncidentRecorded, Scope, Severity
from helm.state import AgentView, ScopeStatus


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(Body):
    """Optional reason for an operator action, recorded with the command."""

    reason: str = Field("", max_length=2000, description="why the operator acts")


class AnomalyRequest(Reason):
    """An anomaly to inject: bigger batches and malformed records for a while."""

    duration_s: float = Field(30.0, gt=0, le=3600, description="how long it lasts")
    batch_multiplier: int = Field(8, ge=1, le=100, description="batch size grows by this")
    malformed_ratio: float = Field(0.3, ge=0, le=1, description="share of malformed records")


class QueryRequest(Body):
    """A chat query to an agent."""

    query: str = Field(min_length=1, max_length=20_000, description="what to ask the agent")


class QueryAnswer(BaseModel):
    """The agent's answer, relayed from ``helm.replies``."""

    agent_id: str
    request_id: str
    answer: str
    outcome: str
    provider: str
    latency_ms: float
    input_tokens: int
    output_tokens: int


class CommandAccepted(BaseModel):
    """A command was published on ``helm.control``; the governor records its effect."""

    accepted: bool = True
    action: str
    agent_ids: list[str]
    actor: str
    event_ids: list[str]


class Ack(BaseModel):
    """An operator's acknowledgement of an incident."""

    actor: str
    ts: float
    note: str = ""


class AckRequest(Body):
    note: str = Field("", max_length=2000, description="optional note")


class IncidentOut(BaseModel):
    """One incident with its stream id (the paging cursor) and acknowledgement, if any."""

    id: str = Field(description="stream id; pass it as `before` to page")
    incident: IncidentRecorded
    ack: Ack | None = None


class IncidentPage(BaseModel):
    incidents: list[IncidentOut]
    next_before: str | None = Field(None, description="cursor for the next (older) page")


class OrgOut(BaseModel):
    """The organisation and its governor's status: ``paused`` while the kill switch is engaged."""

    org_id: str
    name: str
    status: ScopeStatus = Field(
        description="the organisation governor's view: healthy, or paused by the kill switch "
        "(with its reason, actor and since); live as a `scope` delta on the WebSocket"
    )


class StateOut(BaseModel):
    """The whole picture: the organisation, its services, hierarchy, every agent, recent incidents."""

    org: OrgOut
    services: dict[str, ScopeStatus] = Field(
        description="each service's governor status by service id (healthy, contained with "
        "service-wide limits, or paused), for every service the hierarchy or an agent names; "
        "live as `scope` deltas on the WebSocket"
    )
    hierarchy: dict[str, Any]
    agents: dict[str, AgentView]
    incidents: list[IncidentOut]
    last_intervention: IncidentOut | None


class ServiceOut(BaseModel):
    service_id: str
    name: str
    status: ScopeStatus = Field(
        description="the service governor's view: healthy, contained, paused"
    )
    agents: list[AgentView]


class BudgetIn(Body):
    """A token budget: ``amount`` tokens per ``period`` for one scope."""

    scope: BudgetScope = Field(BudgetScope.ORGANIZATION, description="org, service or agent")
    # no ":" — it separates the parts of a budget's id in Redis
    scope_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="id of the organisation, service or agent; default the organisation",
    )
    period: TokenPeriod = Field(TokenPeriod.DAILY, description="hourly, daily, weekly, monthly")
    amount: int = Field(ge=0, description="tokens allowed per period")


class BudgetOut(BaseModel):
    budget_id: str
    scope: str
    scope_id: str
    period: str
    limit: int
    used: int
    remaining: int
    utilization: float
    alert_level: str
    resets_at: float = Field(description="unix seconds when the period ends")
    resets_in_s: float


class Health(BaseModel):
    status: str
    checks: dict[str, str]


class IncidentFilter(BaseModel):
    """Filters of ``GET /incidents``."""

    scope: Scope | None = None
    scope_id: str | None = None
    severity: Severity | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, incident: IncidentRecorded) -> bool:
        i = incident
        return (
            (self.scope is None or i.scope == self.scope)
            and (self.scope_id is None or i.scope_id == self.scope_id)
            and (self.severity is None or i.severity == self.severity)
            and (self.since is None or i.ts >= self.since)
            and (self.until is None or i.ts <= self.until)
        )
