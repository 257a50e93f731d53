"""The observer service: learns each agent's normal and publishes drift.

Observers scale out by consumer group: telemetry is keyed by agent, so each agent's runs reach
one observer, and a rebalanced partition resumes from the checkpoint its previous owner wrote.
A flusher loop checkpoints twice a second and writes the dashboard figures once a second; it also
forgets agents idle for ``HELM_OBSERVER_IDLE_FORGET_S`` (looked for every tenth of that, at most
once a minute apart), so memory follows the live fleet. Stopping flushes once more after the
consumer has finished its last batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from helm import contracts as c
from helm.base import BaseApp
from helm.bus import TRANSIENT
from helm.config import load_config
from helm.runner import sleep_or_stop
from services.observer.handlers import Observer
from services.observer.metrics import ObserverMetrics
from services.observer.settings import ObserverSettings

log = logging.getLogger(__name__)
FLUSH_S = 0.5  # checkpoints: how much handled work a crash can cost (it is redone)
FIGURES_EVERY = 2  # flushes: the dashboard's figures and counters are refreshed every second
FORGET_EVERY_MAX = 120  # flushes: idle agents are looked for at least once a minute


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
        return [consumer.run(stop), self.flusher(stop)]

    async def flusher(self, stop: asyncio.Event) -> None:
        """Flush on a beat; Redis or Kafka trouble is retried on the next beat, not fatal."""
        tick, idle_s = 0, self.os.idle_forget_s
        forget_every = max(1, min(FORGET_EVERY_MAX, int(idle_s / 10 / FLUSH_S)))
        while not await sleep_or_stop(stop, FLUSH_S):
            tick += 1
            try:
                await self.observer.flush(figures=tick % FIGURES_EVERY == 0)
                if tick % forget_every == 0:
                    await self.observer.forget_idle(idle_s)
            except TRANSIENT as exc:
                log.warning("flush failed (%r); retrying", exc)

    async def stop(self) -> None:
        try:
            await self.observer.flush()
        finally:
            await super().stop()


def build_app(settings: ObserverSettings, **kwargs: Any) -> ObserverApp:
    return ObserverApp(settings, **kwargs)
