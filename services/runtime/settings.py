"""Runtime settings (env prefix ``HELM_RUNTIME_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from helm.settings import CommonSettings


class RuntimeSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HELM_RUNTIME_", extra="ignore")

    ops_port: int = Field(
        9103, ge=0, le=65535, description="port of /metrics and /healthz (0: any)"
    )
    group: str = Field("helm.runtime", description="consumer group of the runtime")
    heartbeat_timeout_s: float = Field(
        6.0, gt=0, description="an instance silent this long is dead"
    )
    check_interval_s: float = Field(1.0, gt=0, description="how often liveness is checked")
