"""Issue acceptance: autoscaling on real worker processes.

A task backlog scales an agent up within its policy (1..3 instances, each a process), it scales
back down after the backlog drains and the cooldown passes, and every decision is an incident
that says which metric moved it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helm import contracts as c
from helm.bus import Bus
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

POLICY = """
[agents.scaling]
target_backlog_per_instance = 5
scale_up_cooldown = 1
scale_down_cooldown = 3
"""
TASKS = 60


class Watch:
    """The agent's instances as the runtime shows them, and the most ever shown at once."""

    def __init__(self, store: Store, agent: str) -> None:
        self.store, self.agent, self.peak = store, agent, 0
        self.pids: set[int] = set()

    async def ready(self, count: int) -> dict[str, int] | None:
        shown = await self.store.list_instances(self.agent)
        self.peak = max(self.peak, len(shown))
        ready = await ready_workers(self.store, self.agent)
        self.pids |= set(ready.values())
        return ready if len(ready) == count and len(shown) == count else None


async def scalings(store: Store, until: str) -> list[c.IncidentRecorded] | None:
    """The agent's ``scaled`` incidents, oldest first, once the last one reached ``until``."""
    scaled = [i for _, i in reversed(await store.incidents(200)) if i.kind == "scaled"]
    return scaled if scaled and scaled[-1].state_to == until else None


async def test_a_backlog_scales_up_within_the_policy_and_back_down_after_the_cooldown(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    store: Store,
    bus: Bus,
    tmp_path: Path,
    test_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELM_WORKER_OFFLINE_DELAY_MS", "150")  # a slow model: tasks pile up
    agent = f"scaler-{test_id}"
    config = config_file(tmp_path, agent, kind="processor", min=1, max=3, extra=POLICY)
    app = build_app(runtime_settings(kafka_settings, redis_settings, config, test_id))
    watch = Watch(store, agent)
    async with running(app):
        await eventually(lambda: watch.ready(1), 60, 0.2, what="one ready worker")
        tasks = [
            c.TaskRequested(agent_id=agent, kind="work", input=f"item {n}") for n in range(TASKS)
        ]
        await bus.publish_many(c.tasks_topic(agent), tasks)
        three = await eventually(lambda: watch.ready(3), 90, 0.2, what="three ready workers")
        assert len(set(three.values())) == 3
        one = await eventually(lambda: watch.ready(1), 90, 0.2, what="back to one worker")
        scaled = await eventually(lambda: scalings(store, until="1"), 10, what="the last scaling")
    assert watch.peak == 3, "the policy allows 3 instances at most"
    assert not any(is_worker(p) for p in watch.pids - set(one.values())), "retired workers live on"
    ups = [i for i in scaled if int(i.state_to or 0) > int(i.state_from or 0)]
    downs = [i for i in scaled if int(i.state_to or 0) < int(i.state_from or 0)]
    assert (ups[0].state_from, ups[0].state_to) == ("1", "2"), [i.message for i in scaled]
    assert all(
        "queue_depth_per_instance" in i.message and "above target 5" in i.message for i in ups
    )
    assert scaled[-1].state_from == "2"
    assert all("well below target" in i.message for i in downs)
    assert all(1 <= int(i.state_to or 0) <= 3 and i.scope_id == agent for i in scaled)
