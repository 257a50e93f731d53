"""User agents registered in Redis get worker processes, under their ``helix`` settings."""

from __future__ import annotations

from pathlib import Path

from helm import contracts as c
from helm.settings import KafkaSettings, RedisSettings
from helm.state import AgentMeta
from helm.store import Store
from services.runtime.app import build_app
from tests.integration.runtime.agents import HOG_HELIX
from tests.integration.runtime.support import config_file, runtime_settings
from tests.integration.services import running
from tests.waiting import eventually

APP = "tests.integration.runtime.agents:client"


async def test_a_user_agent_over_its_memory_limit_is_restarted_with_the_reason(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    store: Store,
    tmp_path: Path,
    test_id: str,
) -> None:
    # The file names no agent the runtime could start itself: only the registrations count.
    config = config_file(tmp_path, f"quiet-{test_id}", kind="custom")
    hog = AgentMeta(agent_id="hog", service_id="support", app=APP, helix=HOG_HELIX)
    lost = AgentMeta(agent_id="lost", service_id="support", app="no_such_module:client")
    await store.join_hierarchy(hog)
    await store.join_hierarchy(lost)
    app = build_app(runtime_settings(kafka_settings, redis_settings, config, test_id))
    async with running(app):

        async def oom_restarted() -> list[c.IncidentRecorded] | None:
            found = [i for _, i in await store.incidents(100)]
            return found if any(i.kind == "instance_oom_restarted" for i in found) else None

        incidents = await eventually(oom_restarted, 60, 0.2, what="an OOM restart incident")
        row = (await store.list_instances("hog"))["hog-0"]
    oom = next(i for i in incidents if i.kind == "instance_oom_restarted")
    assert oom.scope_id == "hog-0" and "restarted as pid" in oom.message
    assert "memory limit exceeded" in oom.message and "limit 40 MB" in oom.message
    assert int(row["restarts"]) >= 1 and "memory limit exceeded" in row["last_restart_reason"]
    unrunnable = [i for i in incidents if i.kind == "not_runnable" and i.scope_id == "lost"]
    assert len(unrunnable) == 1 and "no_such_module:client" in unrunnable[0].message
    assert await store.list_instances("lost") == {}
