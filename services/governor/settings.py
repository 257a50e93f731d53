"""Governor settings (env prefix ``HELM_GOVERNOR_``); policies come from the config file."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from helm.settings import CommonSettings


class GovernorSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HELM_GOVERNOR_", extra="ignore")

    ops_port: int = Field(
        9102, ge=0, le=65535, description="port of /metrics and /healthz (0: any)"
    )
    group: str = Field("helm.governor", description="consumer group prefix of the governors")
    tick_s: float = Field(
        0.2, gt=0, description="how often the leader starts due recovery attempts"
    )
    budget_check_s: float = Field(
        1.0, gt=0, description="how often token budgets are checked against their thresholds"
    )
    refresh_s: float = Field(
        1.0, gt=0, description="how often the recovering agents and the hierarchy are re-read"
    )
    lease_s: float = Field(
        5.0, gt=0, description="leadership of recoveries and budget checks lapses after this"
    )
