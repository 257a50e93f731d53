"""What every service shares: its bus, its store, its metrics registry and its ops endpoint.

A service subclasses ``BaseApp``, adds its loops, and gets start and stop in the right order:
Redis, then Kafka (with its topics), then the ops endpoint; stopped in reverse.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from helm import contracts as c
from helm.bus import TRANSIENT, Bus
from helm.metrics import BusMetrics, new_registry
from helm.ops import HealthProbe, OpsServer
from helm.runner import sleep_or_stop
from helm.settings import CommonSettings
from helm.store import Store

log = logging.getLogger(__name__)


async def periodic(
    stop: asyncio.Event, interval_s: float, body: Callable[[], Awaitable[None]], what: str
) -> None:
    """Run ``body`` every ``interval_s`` until ``stop``.

    A round that fails because Redis or Kafka is away is logged and retried at the next round,
    so an outage slows a service down instead of killing it; any other error ends the loop (and
    the process, which is then restarted).
    """
    while not stop.is_set():
        try:
            await body()
        except TRANSIENT as exc:
            log.warning("%s round failed: %r; retrying next round", what, exc)
        await sleep_or_stop(stop, interval_s)


class BaseApp:
    """Wiring common to all services; ``build_app`` in each service passes fakes in tests."""

    name = "service"
    topics: Iterable[str] = c.FIXED_TOPICS

    def __init__(
        self,
        settings: CommonSettings,
        *,
        ops_port: int | None,
        bus: Bus | None = None,
        store: Store | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or new_registry()
        self.bus = bus or Bus(settings.kafka, self.client_id(), BusMetrics(self.registry))
        self.store = store or Store(settings.redis)
        health = HealthProbe({"redis": self.store.ping, "kafka": self.bus.ping})
        self.ops = (
            None
            if ops_port is None
            else OpsServer(self.registry, health, settings.ops_host, ops_port)
        )

    def client_id(self) -> str:
        return f"helm-{self.name}-{socket.gethostname()}-{os.getpid()}"

    async def start(self) -> None:
        await self.store.ping()
        await self.bus.start()
        await self.bus.ensure_topics(self.topics)
        if self.ops is not None:
            await self.ops.start()
            await self.store.register_endpoint(self.name, self.client_id(), self.ops.port)

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        return []

    def system_loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        """Loops every service runs besides its own: the topic watchdog."""
        return [self.watch_topics(stop)]

    async def watch_topics(self, stop: asyncio.Event, every_s: float = 5.0) -> None:
        """Recreate this service's topics if the broker lost them (an in-memory broker restarted).

        Consumers and producers reconnect by themselves; without their topics they would wait on
        auto-creation (which the embedded broker does with its own defaults), so the service puts
        them back as it created them at start, and says so.
        """
        while not await sleep_or_stop(stop, every_s):
            try:
                missing = await self.bus.missing_topics(self.topics)
            except Exception as exc:
                log.warning("cannot read the broker's topics: %r", exc)
                continue
            if missing:
                log.warning(
                    "the broker lost topics %s (restarted?); recreating them", ", ".join(missing)
                )
                await self.bus.ensure_topics(missing)
                self.bus.metrics.topics_recreated.inc(len(missing))

    async def stop(self) -> None:
        """Close in reverse order of start; one failing step does not skip the others."""
        steps: list[Callable[[], Awaitable[None]]] = []
        if self.ops is not None:
            steps += [
                self.ops.stop,
                functools.partial(self.store.unregister_endpoint, self.name, self.client_id()),
            ]
        steps += [self.bus.stop, self.store.close]
        for step in steps:
            try:
                await step()
            except Exception as exc:
                log.warning("while stopping %s: %r", self.name, exc)
