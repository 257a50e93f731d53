"""Observer settings (env prefix ``HELM_OBSERVER_``); drift rules come from the config file."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from helm.settings import CommonSettings


class ObserverSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HELM_OBSERVER_", extra="ignore")

    ops_port: int = Field(
        9101, ge=0, le=65535, description="port of /metrics and /healthz (0: any)"
    )
    group: str = Field("helm.observer", description="consumer group of the observers")
    idle_forget_s: float = Field(
        900.0,
        ge=0,
        description="forget an agent after this long without a run (seconds); its baselines "
        "stay in its checkpoint and come back with its next run",
    )
