"""The runtime in-process, owning real worker processes on the real broker and Redis.

Workers inherit the test's environment: heartbeats every half second, no self-generated work
(built-in agents only do the tasks they are given), so what they do is what a test asks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helm.bus import Bus
from helm.settings import KafkaSettings


@pytest.fixture(autouse=True)
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM_WORKER_HEARTBEAT_INTERVAL_S", "0.5")
    monkeypatch.setenv("HELM_WORKER_AUTORUN", "false")
    monkeypatch.setenv("HELM_LOG_JSON", "false")


@pytest.fixture
async def bus(kafka_settings: KafkaSettings) -> AsyncIterator[Bus]:
    bus = Bus(kafka_settings, "runtime-test")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
