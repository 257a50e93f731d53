"""What a runtime that died left behind: workers still running, their records and endpoints.

Workers normally stop with their runtime (see ``launcher``); this is the backstop. A runtime
records every worker it owns in Redis with its host and pid. At start, before it starts its own,
it ends the recorded workers still running on this host: SIGTERM to the worker's process group,
then SIGKILL after the grace period. A pid is only signalled if that process still says it is
the recorded instance (``HELIX_INSTANCE_ID`` in its environment), so a reused pid is never
touched. A killed worker cannot unregister its metrics endpoint, so the runtime does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import psutil

from helm.store import Store

log = logging.getLogger(__name__)


def is_instance(pid: int, instance_id: str) -> bool:
    try:
        return psutil.Process(pid).environ().get("HELIX_INSTANCE_ID") == instance_id
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def end(pid: int, instance_id: str, grace_s: float) -> bool:
    """Stop a left-behind worker (blocking; run it in a thread). True if one was stopped."""
    if not is_instance(pid, instance_id):
        return False
    log.warning("stopping worker %s (pid %d) left behind by a previous runtime", instance_id, pid)
    _signal_group(pid, signal.SIGTERM)
    try:
        proc = psutil.Process(pid)
        _, alive = psutil.wait_procs([proc], timeout=grace_s)
    except psutil.NoSuchProcess:
        return True
    if alive:
        _signal_group(pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace_s)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Helix starts each worker as the leader of its own process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def reap(store: Store, host: str, grace_s: float) -> None:
    """End the recorded workers of a previous runtime on ``host``; drop all their records."""
    for agent_id in await store.agent_ids():
        for instance_id, rec in (await store.list_instances(agent_id)).items():
            if not rec.get("managed"):
                continue
            pid = rec.get("pid")
            if rec.get("host") == host and isinstance(pid, int):
                await asyncio.to_thread(end, pid, instance_id, grace_s)
                await forget_endpoint(store, pid)
            await store.remove_instance(agent_id, instance_id)


async def forget_endpoint(store: Store, pid: int | None) -> None:
    """Unregister the metrics endpoint of worker ``pid`` (the one its ``BaseApp`` registered)."""
    if pid is None:
        return
    for entry in await store.endpoints():
        if entry.get("service") == "worker" and entry.get("instance", "").endswith(f"-{pid}"):
            await store.unregister_endpoint("worker", entry["instance"])
