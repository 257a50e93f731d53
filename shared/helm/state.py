"""The shapes of Helm's state in Redis: agents, their desired control, the hierarchy.

Each agent is one Redis hash whose fields have one owner each, so writers never overwrite each
other: ``status`` (governor), ``control`` (governor and operators: the desired state a worker obeys),
``anomaly`` (operators), ``metrics`` (observer), ``instances`` (runtime), ``meta`` (runtime).
"""

from __future__ import annotations

import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AgentState(StrEnum):
    HEALTHY = "healthy"
    PAUSED = "paused"
    RECOVERING = "recovering"
    DEGRADED = "degraded"


class Constraints(BaseModel):
    """Limits a worker applies before each run; ``None`` means unlimited / the agent default."""

    model_config = ConfigDict(frozen=True)

    rate_limit_per_min: float | None = None
    batch_size: int | None = None
    max_retries: int | None = None

    def tightened(self, other: Constraints) -> Constraints:
        """The stricter of two constraint sets, limit by limit."""

        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        return Constraints(
            rate_limit_per_min=low(self.rate_limit_per_min, other.rate_limit_per_min),
            batch_size=_int(low(self.batch_size, other.batch_size)),
            max_retries=_int(low(self.max_retries, other.max_retries)),
        )


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class Control(BaseModel):
    """The desired state a worker obeys, level-triggered: read at start and on every command."""

    model_config = ConfigDict(frozen=True)

    paused: bool = False
    probe: bool = Field(False, description="recovery probes: run under constraints")
    constraints: Constraints = Field(default_factory=Constraints)
    actor: str = "helm"
    reason: str = ""
    updated: float = Field(default_factory=time.time)


class Anomaly(BaseModel):
    """An injected anomaly, active until ``until``."""

    model_config = ConfigDict(frozen=True)

    until: float
    batch_multiplier: int = 8
    malformed_ratio: float = 0.3

    def active(self, now: float) -> bool:
        return now < self.until


class Status(BaseModel):
    """The governor's view of an agent."""

    model_config = ConfigDict(frozen=True)

    state: AgentState = AgentState.HEALTHY
    since: float = Field(default_factory=time.time)
    reason: str = ""
    attempts: int = 0
    clean_runs: int = 0
    recover_at: float | None = None
    episode: str = ""
    cause_ids: list[str] = Field(default_factory=list)


class ScopeState(StrEnum):
    HEALTHY = "healthy"
    CONTAINED = "contained"  # service-wide limits on the agents of a service
    PAUSED = "paused"


class ScopeStatus(BaseModel):
    """The governors' view of a service or of the organisation (``service:<id>``, ``org:<id>``)."""

    model_config = ConfigDict(frozen=True)

    state: ScopeState = ScopeState.HEALTHY
    since: float = Field(default_factory=time.time)
    reason: str = ""
    actor: str = "helm"
    episode: str = Field("", description="id of the event that opened the current episode")
    degraded: list[str] = Field(default_factory=list, description="degraded agents (services)")
    cause_ids: list[str] = Field(default_factory=list)


class AgentMeta(BaseModel):
    """Where an agent sits and what it runs on."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    service_id: str = "default"
    org_id: str = "default"
    kind: str = "custom"
    model: str = ""
    provider: str = "offline"
    min_instances: int = 1
    max_instances: int = 1
    app: str = Field("", description="module:client of a user agent, for starting instances")
    helix: dict[str, float | int] = Field(default_factory=dict, description="runtime settings")


class AgentView(BaseModel):
    """Everything known about one agent, as the gateway shows it."""

    agent_id: str
    meta: AgentMeta
    status: Status = Field(default_factory=Status)
    control: Control = Field(default_factory=Control)
    anomaly: Anomaly | None = None
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)
    instances: dict[str, dict[str, object]] = Field(default_factory=dict)
