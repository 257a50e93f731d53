"""The gateway's settings, read from ``HELM_GATEWAY_*`` (plus the shared ``HELM_*`` ones).

Tokens are ``SecretStr`` so they never appear in logs or reprs. With no operator token the
gateway still serves reads but refuses every change with a 401 that names the setting.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from helm.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """HTTP, security, WebSocket fan-out and chat relay settings."""

    model_config = SettingsConfigDict(env_prefix="HELM_GATEWAY_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 in containers)")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    operator_token: SecretStr | None = Field(
        None, description="bearer token required for every change; none disables changes"
    )
    read_token: SecretStr | None = Field(
        None, description="bearer token required for reads when set"
    )
    open_reads: bool = Field(True, description="serve reads without a token (unless read_token)")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty means none"
    )
    chat_timeout_s: float = Field(30.0, gt=0, le=600, description="wait for an agent's answer")
    chat_rate_per_min: float = Field(30.0, gt=0, description="chat queries per minute per client")
    chat_burst: int = Field(5, ge=1, description="chat queries a client may send at once")
    ws_queue_size: int = Field(256, ge=1, description="deltas buffered per WebSocket client")
    ws_send_timeout_s: float = Field(5.0, gt=0, description="a client slower than this is dropped")
    series_points: int = Field(120, ge=1, le=240, description="chart points per agent in snapshots")
    recent_incidents: int = Field(
        50, ge=1, le=1000, description="incidents in /state and snapshots"
    )
    poll_interval_s: float = Field(2.0, gt=0, description="instances and budgets refresh period")
    state_cache_s: float = Field(
        1.0, ge=0, le=60, description="GET /state is rebuilt at most this often (0: every request)"
    )
    health_ttl_s: float = Field(3.0, ge=0, description="how long a /healthz verdict is cached")
    max_body_bytes: int = Field(
        262_144, ge=1024, description="largest request body accepted; larger ones get a 413"
    )

    @field_validator("operator_token", "read_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value
