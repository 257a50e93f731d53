"""The governor service: agent-level and service-level governors, and the incident log.

Consumes drift (to pause), telemetry (to judge recoveries), operator commands on the control
topic (to record them as decisions with their actor) and escalations; a tick starts recovery
attempts when they are due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from helm import contracts as c
from helm.base import BaseApp
from helm.config import load_config
from helm.runner import sleep_or_stop
from services.governor.handlers import Governor
from services.governor.metrics import GovernorMetrics
from services.governor.settings import GovernorSettings


class GovernorApp(BaseApp):
    name = "governor"

    def __init__(self, settings: GovernorSettings, **kwargs: Any) -> None:
        super().__init__(settings, ops_port=settings.ops_port, **kwargs)
        self.gs = settings
        policy = load_config(settings.config_file).governor
        self.governor = Governor(self.bus, self.store, policy, GovernorMetrics(self.registry))

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        g, group = self.governor, self.gs.group
        return [
            self.bus.consumer([c.DRIFT], f"{group}.drift", g.on_drift).run(stop),
            self.bus.consumer([c.TELEMETRY], f"{group}.telemetry", g.on_run).run(stop),
            self.bus.consumer([c.CONTROL], f"{group}.control", g.on_control).run(stop),
            self.bus.consumer([c.ESCALATIONS], f"{group}.escalations", g.on_escalation).run(stop),
            self.ticker(stop),
        ]

    async def ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.governor.tick()
            await sleep_or_stop(stop, self.gs.tick_s)


def build_app(settings: GovernorSettings, **kwargs: Any) -> GovernorApp:
    return GovernorApp(settings, **kwargs)
