"""A governor in-process on the real broker and Redis, a hierarchy, and a tap on its output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.state import AgentMeta
from helm.store import Store
from services.governor.app import build_app
from services.governor.settings import GovernorSettings
from tests.integration.services import common, running
from tests.waiting import eventually

M = TypeVar("M")


class Tap:
    """Every message on some topics from the moment it is ready (no consumer group)."""

    def __init__(self, bus: Bus, topics: list[str]) -> None:
        self.consumer = bus.consumer(topics, None, self._keep, from_latest=True)
        self.seen: list[Any] = []

    async def _keep(self, message: Any) -> None:
        self.seen.append(message)

    async def some(self, kind: type[M], **match: Any) -> list[M]:
        """Those seen so far, waiting up to 10 s for the first."""
        return await eventually(lambda: self._now(kind, match), 10, what=f"{kind.__name__} {match}")

    async def _now(self, kind: type[M], match: dict[str, Any]) -> list[M]:
        return self.all(kind, **match)

    def all(self, kind: type[M], **match: Any) -> list[M]:
        return [
            m
            for m in self.seen
            if isinstance(m, kind) and all(getattr(m, k) == v for k, v in match.items())
        ]


@dataclass
class Harness:
    """What a test drives and watches: a bus to publish on, the store, a tap on the output."""

    bus: Bus
    store: Store
    tap: Tap

    async def incidents(self) -> list[c.IncidentRecorded]:
        """The incident log, oldest first."""
        return [i for _, i in reversed(await self.store.incidents(500))]


Governed = Callable[..., AbstractAsyncContextManager[Harness]]


@pytest.fixture
def governed(
    tmp_path: Path, kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> Governed:
    """``async with governed(config_toml, {agent: service}, **settings_and_app_kw) as h``."""

    @asynccontextmanager
    async def start(config: str, agents: dict[str, str], **kw: Any) -> AsyncIterator[Harness]:
        path = tmp_path / "helm.toml"
        path.write_text(config)
        fields = {k: kw.pop(k) for k in list(kw) if k in GovernorSettings.model_fields}
        base = common(kafka_settings, redis_settings, config_file=path, tick_s=0.05, refresh_s=0.2)
        base["group"] = f"{kafka_settings.topic_prefix}governor"  # consumer groups of this test
        app = build_app(GovernorSettings(**{**base, **fields}), **kw)
        store, bus = Store(redis_settings), Bus(kafka_settings, "governor-test")
        for agent, service in agents.items():
            await store.join_hierarchy(AgentMeta(agent_id=agent, service_id=service, org_id="acme"))
        await bus.start()
        tap, stop = Tap(bus, [c.CONTROL, c.ESCALATIONS]), asyncio.Event()
        try:
            async with running(app):
                task = asyncio.create_task(tap.consumer.run(stop))
                try:
                    await asyncio.wait_for(tap.consumer.ready.wait(), 20)
                    yield Harness(bus, store, tap)
                finally:
                    stop.set()
                    await task
        finally:
            await bus.stop()
            await store.close()

    return start
