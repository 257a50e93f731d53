"""A runtime that dies takes its workers with it; its successor ends any that stayed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

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


def settings_env(kafka: KafkaSettings, redis: RedisSettings, config: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HELM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "HELM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "HELM_KAFKA_FETCH_MAX_WAIT_MS": "20",
        "HELM_REDIS_URL": redis.url,
        "HELM_REDIS_PREFIX": redis.prefix,
        "HELM_CONFIG_FILE": str(config),
    }


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts itself; whatever is left of them is killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


async def test_workers_stop_by_themselves_when_their_runtime_is_killed(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    store: Store,
    tmp_path: Path,
    test_id: str,
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    agent = f"bound-{test_id}"
    env = settings_env(kafka_settings, redis_settings, config_file(tmp_path, agent))
    env |= {
        "HELM_RUNTIME_MANAGE_WORKERS": "true",
        "HELM_RUNTIME_OPS_PORT": "0",
        "HELM_RUNTIME_GROUP": f"runtime.{test_id}",
    }
    runtime = spawn([sys.executable, "-m", "services.runtime"], env, tmp_path / "runtime.log")
    spawned.append(runtime)
    ready = await eventually(lambda: ready_workers(store, agent), 60, 0.2, what="a ready worker")
    worker = ready[f"{agent}-0"]
    assert psutil.Process(worker).ppid() == runtime.pid
    runtime.kill()

    async def gone() -> bool:
        return not is_worker(worker)

    await eventually(gone, 30, 0.2, what="the worker to stop after its runtime died")


async def test_a_new_runtime_ends_the_workers_its_predecessor_left_behind(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    store: Store,
    tmp_path: Path,
    test_id: str,
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    agent = f"heir-{test_id}"
    config = config_file(tmp_path, agent)
    # A worker as a runtime starts it, recorded in Redis, whose runtime is gone.
    env = settings_env(kafka_settings, redis_settings, config)
    env |= {"HELIX_AGENT_ID": agent, "HELIX_INSTANCE_ID": f"{agent}-0", "HELM_WORKER_OPS_PORT": "0"}
    orphan = spawn([sys.executable, "-m", "services.worker"], env, tmp_path / "orphan.log")
    spawned.append(orphan)

    async def serving() -> bool:
        return any(e["instance"].endswith(f"-{orphan.pid}") for e in await store.endpoints())

    await eventually(serving, 60, 0.2, what="the orphan up")
    record = {"pid": orphan.pid, "managed": True, "host": os.uname().nodename}
    await store.put_instance(agent, f"{agent}-0", record)
    app = build_app(runtime_settings(kafka_settings, redis_settings, config, test_id))
    async with running(app):
        assert orphan.poll() is not None, "the orphan outlived the new runtime's start"
        ready = await eventually(lambda: ready_workers(store, agent), 60, 0.2, what="its own")
    assert ready[f"{agent}-0"] != orphan.pid
