"""The gateway service: FastAPI under uvicorn inside Helm's runner, plus its live loops.

Loops (root tasks): the HTTP server, the ``helm.replies`` consumer (no group, from the latest
offset: every gateway sees every answer and keeps those it waits for), the Redis updates fan-out,
and a poll of instances and budgets (which change without a delta on the updates channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Coroutine, Generator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from helix.budgets import TokenBudgetManager
from helix.clock import SYSTEM_CLOCK, Clock
from helm import contracts as c
from helm.base import BaseApp
from helm.budgets import budget_manager
from helm.bus import Bus
from helm.ops import HealthProbe
from helm.store import Store
from services.gateway import queries
from services.gateway.api import create_api
from services.gateway.auth import Guard
from services.gateway.chat import TokenBucket
from services.gateway.context import Gateway
from services.gateway.live import Hub
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: Helm's runner owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class GatewayApp(BaseApp):
    name = "gateway"

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        bus: Bus | None = None,
        store: Store | None = None,
        clock: Clock = SYSTEM_CLOCK,
        budgets: TokenBudgetManager | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(settings, ops_port=None, bus=bus, store=store, registry=registry)
        self.gs = settings
        self.metrics = GatewayMetrics(self.registry)

        health = HealthProbe(
            {"redis": self.store.ping, "kafka": self.bus.ping}, ttl_s=settings.health_ttl_s
        )
        self.gw = Gateway(
            settings=settings,
            bus=self.bus,
            store=self.store,
            # The same budgets the workers reserve against and the governor enforces.
            budgets=budgets or budget_manager(self.store, clock),
            metrics=self.metrics,
            guard=Guard(settings, self.metrics),
            health=health,
            clock=clock,
            limiter=TokenBucket(settings.chat_rate_per_min, settings.chat_burst),
        )
        self.hub = Hub(self.store, self.metrics, settings.ws_queue_size, settings.ws_send_timeout_s)
        self.api = create_api(self.gw, self.hub, self.registry)
        self.replies = self.bus.consumer(
            [c.REPLIES], None, self.gw.waiter.on_reply, from_latest=True
        )
        self._socket: socket.socket | None = None
        self.port = settings.port

    async def start(self) -> None:
        await super().start()
        self._socket = socket.create_server((self.gs.host, self.gs.port), reuse_port=False)
        self._socket.setblocking(False)
        self.port = self._socket.getsockname()[1]
        await self.store.register_endpoint(self.name, self.client_id(), self.port)

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        return [self._serve(stop), self.replies.run(stop), self.hub.run(stop), self._poll(stop)]

    async def _serve(self, stop: asyncio.Event) -> None:
        assert self._socket is not None, "start() first"
        config = uvicorn.Config(
            self.api,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        serving = asyncio.create_task(server.serve(sockets=[self._socket]))
        await stop.wait()
        server.should_exit = True
        await serving

    async def _poll(self, stop: asyncio.Event) -> None:
        """Send instances and budgets as deltas when they change (they have no channel)."""
        last: dict[str, str] = {}
        while not stop.is_set():
            with contextlib.suppress(Exception):
                for key, delta in await self._pollable():
                    text = json.dumps(delta, sort_keys=True)
                    if last.get(key) != text:
                        last[key] = text
                        self.hub.send_delta(delta)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.gs.poll_interval_s)

    async def _pollable(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for agent_id in await self.store.agent_ids():
            instances = await self.store.list_instances(agent_id)
            for data in instances.values():
                data.pop("seen", None)
            out.append(
                (
                    f"i:{agent_id}",
                    {"kind": "instances", "agent_id": agent_id, "instances": instances},
                )
            )
        budgets = [b.model_dump(mode="json") for b in await queries.budgets(self.gw)]
        for b in budgets:
            b.pop("resets_in_s", None)
        out.append(("budgets", {"kind": "budgets", "budgets": budgets}))
        return out

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.store.unregister_endpoint(self.name, self.client_id())
        if self._socket is not None:
            self._socket.close()
        await super().stop()


def build_app(
    settings: GatewaySettings,
    *,
    bus: Bus | None = None,
    store: Store | None = None,
    clock: Clock = SYSTEM_CLOCK,
    budgets: TokenBudgetManager | None = None,
) -> GatewayApp:
    """The gateway with real adapters unless fakes are given."""
    return GatewayApp(settings, bus=bus, store=store, clock=clock, budgets=budgets)
