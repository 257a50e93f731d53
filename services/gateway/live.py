"""Live updates: one Redis subscription per gateway, fanned out to WebSocket clients.

Each client has a bounded queue and its own sender task. Broadcasting never waits on a client:
a client whose queue is full, or whose socket does not take a message within the send timeout,
is dropped with close code 1013 (try again later) and reconnects to a fresh snapshot. If the
subscription itself breaks, every client is told to resync, since deltas may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.websockets import WebSocket, WebSocketDisconnect

from helm.store import Store
from services.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013
SERVICE_RESTART = 1012
Snapshot = Callable[[], Awaitable[dict[str, Any]]]
Control = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Client:
    """One WebSocket client: its queue and whether it was dropped."""

    def __init__(self, ws: WebSocket, size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.gone = asyncio.Event()
        self.reason = ""
        self.code = TRY_AGAIN_LATER


class Hub:
    """The set of clients and the Redis subscription feeding them."""

    def __init__(
        self, store: Store, metrics: GatewayMetrics, queue_size: int, send_timeout_s: float
    ) -> None:
        self.store, self.metrics = store, metrics
        self.queue_size, self.send_timeout_s = queue_size, send_timeout_s
        self.clients: set[Client] = set()
        self.subscribed = asyncio.Event()

    def broadcast(self, text: str, kind: str = "delta") -> None:
        """Queue ``text`` for every client; drop those that cannot take it."""
        for client in list(self.clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self.drop(client, "queue_full")
        self.metrics.ws_messages.labels(kind).inc(len(self.clients))

    def send_delta(self, delta: dict[str, Any]) -> None:
        self.broadcast(json.dumps({"type": "delta", "delta": delta}))

    def drop(self, client: Client, reason: str) -> None:
        if client in self.clients:
            self.clients.discard(client)
            client.reason = reason
            client.gone.set()
            self.metrics.ws_dropped.labels(reason).inc()
            log.info("dropped a WebSocket client: %s", reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Forward the store's updates channel until ``stop``; resubscribe after errors."""
        while not stop.is_set():
            try:
                await self._forward(stop)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.subscribed.clear()
                log.warning("updates subscription lost (%s); resubscribing", exc)
                self.broadcast(json.dumps({"type": "resync"}), "resync")
                await asyncio.sleep(1.0)
        for client in list(self.clients):
            self.clients.discard(client)
            client.reason, client.code = "server shutting down", SERVICE_RESTART
            client.gone.set()

    async def _forward(self, stop: asyncio.Event) -> None:
        pubsub = self.store.redis.pubsub()
        try:
            await pubsub.subscribe(self.store.updates_channel)
            self.subscribed.set()
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self.broadcast('{"type":"delta","delta":' + message["data"] + "}")
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def serve(self, ws: WebSocket, snapshot: Snapshot, control: Control) -> None:
        """Run one client: register, send a snapshot, then deltas and control replies."""
        await ws.accept()
        client = Client(ws, self.queue_size)
        self.clients.add(client)  # before the snapshot, so no delta falls between the two
        self.metrics.ws_clients.inc()
        tasks: list[asyncio.Task[None]] = []
        try:
            await ws.send_text(json.dumps({"type": "snapshot", **await snapshot()}))
            tasks = [
                asyncio.create_task(self._send(client)),
                asyncio.create_task(self._receive(client, control)),
                asyncio.create_task(_wait(client.gone)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.clients.discard(client)
            self.metrics.ws_clients.dec()
            if client.reason:
                await _close(ws, client.code, client.reason)

    async def _send(self, client: Client) -> None:
        while True:
            text = await client.queue.get()
            try:
                await asyncio.wait_for(client.ws.send_text(text), self.send_timeout_s)
            except TimeoutError:
                self.drop(client, "send_timeout")
                return

    async def _receive(self, client: Client, control: Control) -> None:
        try:
            while True:
                text = await client.ws.receive_text()
                reply = await control(_parse(text))
                try:
                    client.queue.put_nowait(json.dumps(reply))
                except asyncio.QueueFull:
                    self.drop(client, "queue_full")
                    return
        except WebSocketDisconnect:
            return


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason[:100]), 1.0)
