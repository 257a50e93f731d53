"""The hierarchy, agents and policies file (TOML), validated into frozen models.

The runtime loads it into Redis at start; other services read the parts they need (drift rules,
governor policy, prices) from the same file, so one file describes one deployment.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helm.state import Constraints


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrgConfig(_Frozen):
    id: str = "default"
    name: str = "Default organisation"


class ServiceConfig(_Frozen):
    id: str
    name: str = ""


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


class DriftConfig(_Frozen):
    tokens_ratio: float = Field(5.0, gt=1)
    baseline_runs: int = Field(20, ge=3)
    warmup_runs: int = Field(5, ge=1)
    confidence_min: float = Field(0.55, ge=0, le=1)
    confidence_runs: int = Field(3, ge=1)
    retries_runs: int = Field(3, ge=1)
    retries_window: int = Field(5, ge=1)


class GovernorConfig(_Frozen):
    recovery_delay_s: float = Field(2.0, ge=0)
    clean_runs: int = Field(5, ge=1)
    max_attempts: int = Field(3, ge=1)
    tight: Constraints = Constraints(rate_limit_per_min=120, batch_size=2, max_retries=1)


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
