"""Runtime and per-agent resource configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

Backend = Literal["process", "inprocess"]
RestartPolicy = Literal["always", "on-failure", "never"]


def _default_backend() -> Backend:
    # HELIX_BACKEND=inprocess lets notebooks and tests run the same code without processes.
    return "inprocess" if os.environ.get("HELIX_BACKEND") == "inprocess" else "process"


@dataclass
class RuntimeConfig:
    """The runtime as a whole.

    ``max_workers`` bounds the instances running at once across all agents. ``shutdown_timeout``
    is how long stopping instances may drain after SIGTERM before they are killed.
    ``monitor_interval`` is how often CPU and memory are sampled and limits enforced.
    """

    environment: str = "development"
    hot_reload: bool = False
    max_workers: int = 10
    backend: Backend = field(default_factory=_default_backend)
    shutdown_timeout: float = 10.0
    monitor_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.max_workers < 1:
            raise ValueError("max_workers must be at least 1")


@dataclass
class ResourceConfig:
    """One agent's instances: how many, their limits and how they restart.

    A crashed instance restarts after ``backoff_initial`` seconds, doubling each time up to
    ``backoff_max`` (Kubernetes' CrashLoopBackOff); the delay resets once an instance has run for
    ``backoff_reset_after`` seconds. Above ``memory_limit_mb`` of resident memory (the process and
    its children) an instance is killed and restarted, with the reason recorded.
    """

    min_instances: int = 1
    max_instances: int = 10
    memory_limit_mb: float | None = None
    restart_policy: RestartPolicy = "always"
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    backoff_reset_after: float = 60.0
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.min_instances <= self.max_instances:
            raise ValueError("need 0 <= min_instances <= max_instances")
