"""Settings shared by every service, read from ``HELM_*`` environment variables.

Each service builds its settings once in ``__main__`` and passes them down; nothing here is a
module-level instance. ``load`` turns a validation error into one message listing every problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CONFIG = Path(__file__).with_name("default_config.toml")


class KafkaSettings(BaseSettings):
    """Where the broker is and how topics are named."""

    model_config = SettingsConfigDict(env_prefix="HELM_KAFKA_", extra="ignore")

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    topic_prefix: str = Field(
        "", description="prefix added to every topic name, so several stacks can share a broker"
    )
    partitions: int = Field(4, ge=1, description="partitions for topics Helm creates")
    replication_factor: int = Field(1, ge=1, description="replication factor for created topics")
    fetch_max_wait_ms: int = Field(
        20, ge=1, le=1000, description="consumer fetch wait (latency of control)"
    )
    linger_ms: int = Field(5, ge=0, le=1000, description="producer batching delay")
    session_timeout_ms: int = Field(6000, ge=1000, description="consumer group session timeout")
    max_message_bytes: int = Field(1_048_576, ge=1024, description="largest event accepted")


class RedisSettings(BaseSettings):
    """Where Redis is and the prefix of every key Helm writes."""

    model_config = SettingsConfigDict(env_prefix="HELM_REDIS_", extra="ignore")

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")
    prefix: str = Field("helm:", description="prefix of every Redis key")
    timeout_s: float = Field(2.0, gt=0, description="socket timeout for Redis calls")


def _shared(name: str) -> AliasChoices:
    """A shared setting keeps its ``HELM_`` name in every service's settings class."""
    return AliasChoices(name, f"HELM_{name.upper()}")


class CommonSettings(BaseSettings):
    """What every service needs: broker, Redis, the hierarchy file and its ops port.

    Services subclass this with their own env prefix; the shared fields keep their ``HELM_*``
    names through aliases, so ``HELM_LOG_LEVEL`` means the same thing to every service.
    """

    model_config = SettingsConfigDict(env_prefix="HELM_", extra="ignore", populate_by_name=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    config_file: Path = Field(
        DEFAULT_CONFIG,
        validation_alias=_shared("config_file"),
        description="hierarchy, agents and policies (TOML)",
    )
    ops_host: str = Field(
        "127.0.0.1",
        validation_alias=_shared("ops_host"),
        description="address of /metrics and /healthz (0.0.0.0 in containers)",
    )
    log_level: str = Field(
        "INFO", validation_alias=_shared("log_level"), description="logging level"
    )
    log_json: bool | None = Field(
        None,
        validation_alias=_shared("log_json"),
        description="JSON logs (default: when not on a terminal)",
    )
    anthropic_api_key: SecretStr | None = Field(
        default_factory=lambda: _secret(os.environ.get("ANTHROPIC_API_KEY")),
        validation_alias=AliasChoices("anthropic_api_key", "ANTHROPIC_API_KEY"),
        description="Claude API key; without one workers use the offline provider",
    )


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


class SettingsError(SystemExit):
    """Start-up stops with every missing or invalid setting listed."""


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Build settings from the environment, or stop with a readable list of what is wrong."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in exc.errors()]
        raise SettingsError(f"invalid settings for {cls.__name__}:\n" + "\n".join(lines)) from exc
