"""A worker that stops answering is marked dead and replaced by a new process."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.runtime.app import build_app
from tests.integration.runtime.support import (
    config_file,
    is_worker,
    ready_workers,
    runtime_settings,
)
from tests.integration.services import running
from tests.waiting import eventually


async def test_a_frozen_worker_is_marked_dead_and_replaced(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    store: Store,
    tmp_path: Path,
    test_id: str,
) -> None:
    agent = f"live-{test_id}"
    config = config_file(tmp_path, agent, kind="classifier")
    app = build_app(runtime_settings(kafka_settings, redis_settings, config, test_id))
    frozen: int | None = None
    try:
        async with running(app):
            first = await eventually(
                lambda: ready_workers(store, agent), 60, 0.2, what="a ready worker"
            )
            frozen = first[f"{agent}-0"]
            os.kill(frozen, signal.SIGSTOP)  # alive to the OS, silent to Helm

            async def replaced() -> dict[str, int] | None:
                now = await ready_workers(store, agent)
                return now if now and frozen not in now.values() else None

            after = await eventually(replaced, 60, 0.2, what="a new ready process")
            incidents = [i for _, i in await store.incidents(50)]
        dead = [i for i in incidents if i.kind == "instance_dead" and i.scope_id == f"{agent}-0"]
        assert dead, [i.kind for i in incidents]
        assert f"pid {frozen}" in dead[0].message and "no heartbeat" in dead[0].message
        assert list(after) == [f"{agent}-0"]
        assert not is_worker(frozen), "the frozen process was left behind"
        assert not is_worker(after[f"{agent}-0"]), "the runtime left its worker behind on stop"
    finally:
        if frozen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGKILL)
