"""The observer service: learns each agent's normal and publishes drift.

Observers scale out by consumer group: telemetry is keyed by agent, so each agent's runs reach
one observer, and a rebalanced partition resumes from the checkpoint its previous owner wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from helm import contracts as c
from helm.base import BaseApp
from helm.config import load_config
from services.observer.handlers import Observer
from services.observer.metrics import ObserverMetrics
from services.observer.settings import ObserverSettings


class ObserverApp(BaseApp):
    name = "observer"

    def __init__(self, settings: ObserverSettings, **kwargs: Any) -> None:
        super().__init__(settings, ops_port=settings.ops_port, **kwargs)
        self.os = settings
        cfg = load_config(settings.config_file).drift
        self.observer = Observer(self.bus, self.store, cfg, ObserverMetrics(self.registry))

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        consumer = self.bus.consumer(
            [c.TELEMETRY],
            self.os.group,
            batch_handler=self.observer.handle,
            resume_from=self.observer.resume_from,
        )
        return [consumer.run(stop)]


def build_app(settings: ObserverSettings, **kwargs: Any) -> ObserverApp:
    return ObserverApp(settings, **kwargs)
