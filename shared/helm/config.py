"""The hierarchy, agents and policies file (TOML), validated into frozen models.

The runtime loads it into Redis at start; other services read the parts they need (drift rules,
governor policy, prices) from the same file, so one file describes one deployment.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from helm.state import Constraints


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrgConfig(_Frozen):
    id: str = "default"
    name: str = "Default organisation"


class ServiceConfig(_Frozen):
    id: str
    name: str = ""


class ScalingConfig(_Frozen):
    """How the runtime autoscales one agent (``[agents.scaling]``, or the ``helix`` dict).

    A target of 0 turns that signal off. Backlog is the agent's unfinished tasks (consumer lag
    of its workers' group); tokens per second and p95 latency come from the observer.
    """

    mode: Literal["threshold", "proportional"] = "threshold"
    target_cpu_percent: float = Field(70.0, ge=0)
    target_memory_percent: float = Field(80.0, ge=0)
    target_backlog_per_instance: float = Field(10.0, ge=0)
    target_tokens_per_second_per_instance: float = Field(0.0, ge=0)
    target_p95_latency_ms: float = Field(0.0, ge=0)
    scale_up_cooldown: float = Field(60.0, ge=0)
    scale_down_cooldown: float = Field(300.0, ge=0)
    scale_up_step: int = Field(1, ge=1)
    scale_down_step: int = Field(1, ge=1)
    scale_down_margin: float = Field(0.2, ge=0, lt=1)
    tolerance: float = Field(0.1, ge=0)
    stabilization_window: float = Field(300.0, ge=0)


class AgentConfig(_Frozen):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    service: str
    kind: str = "custom"
    model: str = "claude-haiku-4-5"
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0, le=1)
    batch_size: int = Field(5, ge=1)
    run_interval_s: float = Field(0.5, ge=0)
    min_instances: int = Field(1, ge=0)
    max_instances: int = Field(1, ge=1)
    memory_limit_mb: float | None = Field(None, gt=0, description="restart an instance above it")
    scaling: ScalingConfig = ScalingConfig()


RuleMetric = Literal["tokens_per_run", "latency_ms", "cost", "confidence", "error_rate"]


class RuleConfig(_Frozen):
    """A further drift rule (``[drift.rules.<name>]``).

    ``error_rate``: the share of failed runs among the last ``window`` runs is above ``threshold``
    and above ``ratio`` x the agent's baseline error rate. Any other metric: the run's value is
    ``direction`` ``ratio`` x the rolling median of the last ``window`` healthy runs (and beyond
    ``threshold`` when one is given, an absolute floor).
    """

    metric: RuleMetric
    ratio: float | None = Field(None, gt=0)
    threshold: float | None = Field(None, ge=0)
    direction: Literal["above", "below"] = "above"
    window: int = Field(20, ge=1, le=200)
    enabled: bool = False

    @model_validator(mode="after")
    def _complete(self) -> RuleConfig:
        if self.metric == "error_rate" and (self.threshold is None or self.threshold >= 1):
            raise ValueError("an error_rate rule needs a threshold below 1 (a share of runs)")
        if self.metric != "error_rate" and self.ratio is None:
            raise ValueError(f"a {self.metric} rule needs a ratio")
        return self


# The further rules every deployment has, off by default; a [drift.rules.<name>] table with one of
# these names changes only the keys it gives.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "latency_spike": {"metric": "latency_ms", "ratio": 3.0, "window": 20},
    "cost_spike": {"metric": "cost", "ratio": 5.0, "window": 20},
    "error_rate": {"metric": "error_rate", "threshold": 0.5, "ratio": 3.0, "window": 10},
}


class DriftOverride(_Frozen):
    """``[drift.services.<id>]`` or ``[drift.agents.<id>]``: any drift key, or part of a rule."""

    tokens_ratio: float | None = Field(None, gt=1)
    baseline_runs: int | None = Field(None, ge=3, le=200)
    warmup_runs: int | None = Field(None, ge=1)
    confidence_min: float | None = Field(None, ge=0, le=1)
    confidence_runs: int | None = Field(None, ge=1)
    retries_runs: int | None = Field(None, ge=1)
    retries_window: int | None = Field(None, ge=1, le=200)
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)


class DriftConfig(_Frozen):
    tokens_ratio: float = Field(5.0, gt=1)
    baseline_runs: int = Field(20, ge=3, le=200)
    warmup_runs: int = Field(5, ge=1)
    confidence_min: float = Field(0.55, ge=0, le=1)
    confidence_runs: int = Field(3, ge=1)
    retries_runs: int = Field(3, ge=1)
    retries_window: int = Field(5, ge=1, le=200)
    rules: dict[str, RuleConfig] = Field(default_factory=dict, validate_default=True)
    services: dict[str, DriftOverride] = Field(default_factory=dict)
    agents: dict[str, DriftOverride] = Field(default_factory=dict)

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_over_defaults(cls, value: Any) -> Any:
        return _with_defaults(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _overrides_resolve(self) -> DriftConfig:
        checks = [("services", s, s, "") for s in self.services]
        checks += [("agents", a, "", a) for a in self.agents]
        for table, name, service, agent in checks:
            try:
                self.resolve(service, agent)
            except ValidationError as exc:
                raise ValueError(f"[drift.{table}.{name}]: {exc}") from None
        return self

    def resolve(self, service_id: str, agent_id: str) -> DriftConfig:
        """The policy for one agent: these keys, then its service's overrides, then its own."""
        data = self.model_dump(exclude={"services", "agents"})
        for override in (self.services.get(service_id), self.agents.get(agent_id)):
            if override is None:
                continue
            data.update(override.model_dump(exclude={"rules"}, exclude_none=True))
            for name, keys in override.rules.items():
                data["rules"][name] = {**data["rules"].get(name, {}), **keys}
        return DriftConfig.model_validate(data)


def _with_defaults(rules: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) for k, v in DEFAULT_RULES.items()}
    for name, keys in rules.items():
        given = keys.model_dump() if isinstance(keys, BaseModel) else dict(keys)
        merged[name] = {**merged.get(name, {}), **given}
    return merged


class GovernorOverride(_Frozen):
    """``[governor.services.<id>]`` or ``[governor.agents.<id>]``: unset fields inherit.

    An agent's policy is the ``[governor]`` defaults, then its service's override, then its own;
    ``tight`` is merged limit by limit (only the limits given are replaced).
    """

    recovery_delay_s: float | None = Field(None, ge=0)
    clean_runs: int | None = Field(None, ge=1)
    max_attempts: int | None = Field(None, ge=1)
    tight: Constraints | None = None


class ServicePolicy(_Frozen):
    """``[governor.service]``: how the service governor contains a degraded agent."""

    limits: Constraints = Field(
        Constraints(rate_limit_per_min=60, batch_size=2, max_retries=1),
        description="limits put on the other agents of a service with a degraded agent",
    )
    pause_share: float = Field(
        0.5, ge=0, lt=1, description="the service is paused when more than this share is degraded"
    )


class OrgPolicy(_Frozen):
    """``[governor.org]``: how the organisation governor enforces token budgets."""

    throttle: Constraints = Field(
        Constraints(rate_limit_per_min=6),
        description="limits on every agent under a budget past 95 %",
    )


class GovernorConfig(_Frozen):
    recovery_delay_s: float = Field(2.0, ge=0)
    clean_runs: int = Field(5, ge=1)
    max_attempts: int = Field(3, ge=1)
    tight: Constraints = Constraints(rate_limit_per_min=120, batch_size=2, max_retries=1)
    service: ServicePolicy = ServicePolicy()
    org: OrgPolicy = OrgPolicy()
    services: dict[str, GovernorOverride] = Field(default_factory=dict)
    agents: dict[str, GovernorOverride] = Field(default_factory=dict)


class Price(_Frozen):
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")


class HelmConfig(_Frozen):
    org: OrgConfig = OrgConfig()
    services: list[ServiceConfig] = Field(default_factory=list)
    agents: list[AgentConfig] = Field(default_factory=list)
    drift: DriftConfig = DriftConfig()
    governor: GovernorConfig = GovernorConfig()
    prices: dict[str, Price] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _agents_in_known_services(self) -> HelmConfig:
        known = {s.id for s in self.services}
        for agent in self.agents:
            if agent.service not in known:
                raise ValueError(f"agent {agent.id!r} names unknown service {agent.service!r}")
        return self

    def agent(self, agent_id: str) -> AgentConfig | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


class ConfigError(SystemExit):
    """The configuration file is missing or invalid; the message says where."""


def load_config(path: Path) -> HelmConfig:
    try:
        data = tomllib.loads(path.read_text())
        return HelmConfig.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"invalid configuration file {path}:\n{exc}") from None
