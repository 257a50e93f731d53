"""The runtime service: the hierarchy, instances and their liveness."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from helm import contracts as c
from helm.base import BaseApp
from helm.config import load_config
from helm.runner import sleep_or_stop
from services.runtime.handlers import Liveness, load_hierarchy
from services.runtime.metrics import RuntimeMetrics
from services.runtime.settings import RuntimeSettings


class RuntimeApp(BaseApp):
    name = "runtime"

    def __init__(self, settings: RuntimeSettings, **kwargs: Any) -> None:
        super().__init__(settings, ops_port=settings.ops_port, **kwargs)
        self.rs = settings
        self.config = load_config(settings.config_file)
        self.topics = (*c.FIXED_TOPICS, *(c.tasks_topic(a.id) for a in self.config.agents))
        self.liveness = Liveness(
            self.bus, self.store, settings.heartbeat_timeout_s, RuntimeMetrics(self.registry)
        )

    async def start(self) -> None:
        await super().start()
        provider = "anthropic" if self.settings.anthropic_api_key else "offline"
        await load_hierarchy(self.store, self.config, provider)

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        heartbeats = self.bus.consumer([c.HEARTBEATS], self.rs.group, self.liveness.on_heartbeat)
        return [heartbeats.run(stop), self.checker(stop)]

    async def checker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.liveness.check()
            await sleep_or_stop(stop, self.rs.check_interval_s)


def build_app(settings: RuntimeSettings, **kwargs: Any) -> RuntimeApp:
    return RuntimeApp(settings, **kwargs)
