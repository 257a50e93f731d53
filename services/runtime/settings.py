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
    manage_workers: bool = Field(
        False,
        description="start, replace and autoscale the worker processes (helmctl up turns it on)",
    )
    max_workers: int = Field(20, ge=1, description="worker processes at most, all agents together")
    scale_interval_s: float = Field(5.0, gt=0, description="how often autoscaling is evaluated")
    startup_grace_s: float = Field(
        30.0, gt=0, description="a new worker may take this long to send its first heartbeat"
    )
    worker_grace_s: float = Field(
        8.0, gt=0, description="a stopping worker may drain this long before it is killed"
    )
