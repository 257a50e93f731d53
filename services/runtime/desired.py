"""Which agents the runtime runs, and how: from the configuration file and from Redis.

An agent gets worker processes when it is a built-in kind in the configuration file, or when a
user registered it (its ``AgentMeta`` names an ``app``, "module:client"); the file wins when both
name it. Each becomes a ``WorkerSpec``: instance bounds, memory limit and scaling policy, from
the file's ``[agents.scaling]`` table or the user's ``helix`` dict (same keys). Pure functions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from helix import ResourceConfig, ScalingMode, ScalingPolicy
from helm.config import AgentConfig, HelmConfig, ScalingConfig
from helm.state import AgentMeta
from services.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)

BUILTIN_KINDS = frozenset({"classifier", "processor"})
WORKER_COMMAND = ("-m", "services.worker")


@dataclass(frozen=True)
class WorkerSpec:
    """One agent's worker instances as the runtime should keep them."""

    agent_id: str
    app: str  # "" for a built-in agent of the configuration file
    min_instances: int
    max_instances: int
    memory_limit_mb: float | None = None
    scaling: ScalingConfig = field(default_factory=ScalingConfig)

    def resources(self) -> ResourceConfig:
        """Helix's resources: bounds, memory limit, and the worker's identity in its env."""
        env = {"HELM_WORKER_AGENT": self.agent_id, "HELM_WORKER_APP": self.app}
        return ResourceConfig(
            min_instances=self.min_instances,
            max_instances=self.max_instances,
            memory_limit_mb=self.memory_limit_mb,
            env=env,
        )

    def policy(self) -> ScalingPolicy:
        s = self.scaling
        return ScalingPolicy(
            min_instances=self.min_instances,
            max_instances=self.max_instances,
            mode=ScalingMode(s.mode),
            target_cpu_percent=_target(s.target_cpu_percent),
            target_memory_percent=_target(s.target_memory_percent)
            if self.memory_limit_mb
            else None,
            target_queue_depth_per_instance=_target(s.target_backlog_per_instance),
            target_tokens_per_second_per_instance=_target(s.target_tokens_per_second_per_instance),
            target_p95_latency_ms=_target(s.target_p95_latency_ms),
            scale_up_cooldown=s.scale_up_cooldown,
            scale_down_cooldown=s.scale_down_cooldown,
            scale_up_step=s.scale_up_step,
            scale_down_step=s.scale_down_step,
            scale_down_margin=s.scale_down_margin,
            tolerance=s.tolerance,
            stabilization_window=s.stabilization_window,
        )


def _target(value: float) -> float | None:
    return value if value > 0 else None  # 0 turns a signal off


def from_config(agent: AgentConfig) -> WorkerSpec | None:
    """A built-in agent of the file; None for other kinds (their users run them)."""
    if agent.kind not in BUILTIN_KINDS:
        return None
    return WorkerSpec(
        agent.id,
        "",
        agent.min_instances,
        max(agent.max_instances, agent.min_instances),
        agent.memory_limit_mb,
        agent.scaling,
    )


def from_meta(meta: AgentMeta) -> WorkerSpec | None:
    """A registered user agent (None without an ``app``), honouring its ``helix`` dict."""
    if not meta.app:
        return None
    helix: dict[str, Any] = dict(meta.helix)
    limit = helix.get("memory_limit_mb")
    return WorkerSpec(
        meta.agent_id,
        meta.app,
        meta.min_instances,
        max(meta.max_instances, meta.min_instances),
        float(limit) if limit else None,
        scaling_of(meta.agent_id, helix),
    )


def scaling_of(agent_id: str, helix: dict[str, Any]) -> ScalingConfig:
    """The scaling keys of a ``helix`` dict; the defaults (and a warning) if they are invalid."""
    keys = {k: v for k, v in helix.items() if k in ScalingConfig.model_fields}
    try:
        return ScalingConfig.model_validate(keys)
    except ValidationError as exc:
        log.warning("agent %s: invalid scaling settings, using defaults: %s", agent_id, exc)
        return ScalingConfig()


def desired(config: HelmConfig, metas: list[AgentMeta]) -> dict[str, WorkerSpec]:
    """Every agent that should have workers, by id; the configuration file wins."""
    out = {m.agent_id: s for m in metas if (s := from_meta(m)) is not None}
    out.update({a.id: s for a in config.agents if (s := from_config(a)) is not None})
    return out


def importable(app: str) -> bool:
    """Whether a worker started here could find ``app``'s module (its parent packages are
    imported to look; the module itself is not)."""
    module = app.partition(":")[0]
    try:
        return bool(module) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def worker_env(settings: RuntimeSettings, cwd: str) -> dict[str, str]:
    """The runtime's own broker, Redis and config for its workers, and any free ops port.

    Built from the runtime's settings rather than copied from its environment, so a runtime
    configured in code (tests) hands the same values to its workers.
    """
    env = {**_env_of("HELM_KAFKA_", settings.kafka), **_env_of("HELM_REDIS_", settings.redis)}
    env |= {
        "HELM_CONFIG_FILE": str(settings.config_file),
        "HELM_OPS_HOST": settings.ops_host,
        "HELM_LOG_LEVEL": settings.log_level,
        "HELM_WORKER_OPS_PORT": "0",  # each worker registers the port it got in Redis
        # A user's module is found from where the runtime runs, as `helmctl worker` does.
        "PYTHONPATH": os.pathsep.join(filter(None, [cwd, os.environ.get("PYTHONPATH")])),
    }
    if settings.log_json is not None:
        env["HELM_LOG_JSON"] = str(settings.log_json).lower()
    if settings.anthropic_api_key is not None:
        env["ANTHROPIC_API_KEY"] = settings.anthropic_api_key.get_secret_value()
    return env


def _env_of(prefix: str, settings: BaseModel) -> dict[str, str]:
    """Settings back as the environment variables they are read from."""
    out = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            out[prefix + name.upper()] = str(value)
    return out
