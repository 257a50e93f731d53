"""Worker settings: which agent this instance runs, and how (env prefix ``HELM_WORKER_``)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from helm.settings import CommonSettings


def _default_instance() -> str:
    return os.environ.get("HELIX_INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HELM_WORKER_", extra="ignore")

    agent: str = Field(
        default_factory=lambda: os.environ.get("HELIX_AGENT_ID", ""),
        min_length=1,
        description="agent id this instance runs (from the configuration file)",
    )
    instance_id: str = Field(default_factory=_default_instance, description="this instance's id")
    ops_port: int = Field(
        9104, ge=0, le=65535, description="port of /metrics and /healthz (0: any)"
    )
    heartbeat_interval_s: float = Field(2.0, gt=0, description="seconds between heartbeats")
    reconcile_interval_s: float = Field(5.0, gt=0, description="re-read desired state this often")
    seed: int | None = Field(None, description="seed of the work generator (default: from the id)")
    offline_delay_ms: float = Field(20.0, ge=0, description="simulated model time, offline")
    autorun: bool = Field(True, description="built-in agents generate their own work")
    app: str = Field("", description="module:client of a user agent (see helmctl worker)")
