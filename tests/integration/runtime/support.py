"""Helpers for the runtime's tests: a one-agent configuration, settings, real worker pids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil

from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.runtime.settings import RuntimeSettings
from tests.integration.services import common

CONFIG = """
[org]
id = "acme"

[[services]]
id = "svc"

[[agents]]
id = "{agent}"
service = "svc"
kind = "{kind}"
min_instances = {min}
max_instances = {max}
{extra}
"""


def config_file(tmp_path: Path, agent: str, kind: str = "processor", **kw: Any) -> Path:
    """A configuration with one agent (``min``, ``max``, ``extra`` TOML lines for it)."""
    text = CONFIG.format(
        agent=agent,
        kind=kind,
        min=kw.get("min", 1),
        max=kw.get("max", 1),
        extra=kw.get("extra", ""),
    )
    path = tmp_path / "helm.toml"
    path.write_text(text)
    return path


def runtime_settings(
    kafka: KafkaSettings, redis: RedisSettings, config: Path, test_id: str, **over: Any
) -> RuntimeSettings:
    values: dict[str, Any] = {
        "config_file": config,
        "manage_workers": True,
        "group": f"runtime.{test_id}",
        "heartbeat_timeout_s": 3.0,
        "check_interval_s": 0.5,
        "scale_interval_s": 0.5,
        "worker_grace_s": 5.0,
        **over,
    }
    return RuntimeSettings(**common(kafka, redis), **values)


def is_worker(pid: object) -> bool:
    """A live (not zombie) ``python -m services.worker`` process."""
    try:
        proc = psutil.Process(int(pid))  # type: ignore[call-overload]
        return proc.status() != psutil.STATUS_ZOMBIE and "services.worker" in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, TypeError, ValueError):
        return False


async def ready_workers(store: Store, agent: str) -> dict[str, int]:
    """Instance id -> pid of the agent's instances the runtime shows as ready, live processes."""
    rows = await store.list_instances(agent)
    return {i: r["pid"] for i, r in rows.items() if r.get("ready") and is_worker(r.get("pid"))}
