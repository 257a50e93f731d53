"""The WebSocket: a snapshot, then deltas; a client that never reads is dropped, not waited on."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from helm.state import ScopeState, ScopeStatus
from helm.store import Store
from services.gateway.app import GatewayApp
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import TOKEN, start_gateway
from tests.waiting import eventually

CLIENTS = 50
DELTAS = 300
PADDING = "x" * 16_000  # big deltas fill the socket buffers of the client that never reads


@pytest.fixture
async def small_queues(settings: GatewaySettings, seeded: Store) -> AsyncIterator[GatewayApp]:
    tight = settings.model_copy(update={"ws_queue_size": 16, "ws_send_timeout_s": 1.0})
    app, stop, task = await start_gateway(tight)
    try:
        yield app
    finally:
        stop.set()
        await task
        await app.stop()


async def _snapshot(ws: ClientConnection) -> dict[str, Any]:
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "snapshot"
    return first  # type: ignore[no-any-return]


async def _read_until_last(ws: ClientConnection) -> int:
    """Count run deltas until the one with the last sequence number."""
    seen = 0
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if msg["type"] == "delta" and msg["delta"]["kind"] == "run":
            seen += 1
            if msg["delta"]["point"]["seq"] == DELTAS - 1:
                return seen


async def test_fifty_clients_and_one_that_never_reads(
    small_queues: GatewayApp, seeded: Store
) -> None:
    url = f"ws://127.0.0.1:{small_queues.port}/ws"
    readers = [await connect(url, max_size=None) for _ in range(CLIENTS - 1)]
    stuck = await _never_reads(small_queues.port)
    try:
        snapshots = [await _snapshot(ws) for ws in readers]
        assert set(snapshots[0]["state"]["agents"]) == {"classifier", "processor"}
        await eventually(lambda: _count(small_queues, CLIENTS), what="50 clients registered")
        counting = [asyncio.create_task(_read_until_last(ws)) for ws in readers]
        for seq in range(DELTAS):
            await seeded.set_metrics(
                "classifier", {"runs_per_min": seq}, {"seq": seq, "pad": PADDING}
            )
        counts = await asyncio.wait_for(asyncio.gather(*counting), 60)
        assert counts == [DELTAS] * (CLIENTS - 1)
        dropped = small_queues.metrics.ws_dropped
        assert (
            sum(s.value for m in dropped.collect() for s in m.samples if s.name.endswith("_total"))
            >= 1
        )
        # The server closed it: with 1013 when the close frame fits through the full pipe.
        assert await _close_code(stuck) in (1013, None)
    finally:
        for ws in readers:
            await ws.close()


async def _never_reads(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that stops reading after the handshake."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = await asyncio.wait_for(loop.sock_recv(sock, 1024), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def _close_code(sock: socket.socket) -> int | None:
    """Read until the server closes the connection; the close frame's code if one came."""
    loop, data = asyncio.get_running_loop(), bytearray()
    try:
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    marker = data.rfind(bytes([0x88]))
    return int.from_bytes(data[marker + 2 : marker + 4], "big") if marker >= 0 else None


async def _count(app: GatewayApp, n: int) -> bool:
    return len(app.hub.clients) == n


async def test_control_messages_need_the_operator_token(gateway: GatewayApp, seeded: Store) -> None:
    async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
        await _snapshot(ws)
        await ws.send(json.dumps({"action": "pause", "agent_id": "classifier", "id": 1}))
        refused = await _reply(ws)
        assert (refused["type"], refused["status"], refused["id"]) == ("error", 401, 1)
        await ws.send(json.dumps({"action": "pause", "agent_id": "classifier", "token": TOKEN}))
        accepted = await _reply(ws)
        assert accepted["type"] == "result" and accepted["result"]["action"] == "pause"


async def _reply(ws: ClientConnection) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["type"] in ("result", "error"):
            return msg


async def test_reconnecting_client_gets_a_fresh_snapshot(
    gateway: GatewayApp, seeded: Store
) -> None:
    url = f"ws://127.0.0.1:{gateway.port}/ws"
    async with connect(url) as ws:
        await _snapshot(ws)
        await seeded.set_metrics("processor", {"runs_per_min": 7}, {"ts": 1, "tokens": 9})
        delta = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert delta["delta"]["kind"] in ("run", "instances", "budgets")
    async with connect(url) as ws:
        snap = await _snapshot(ws)
        assert snap["state"]["agents"]["processor"]["metrics"]["runs_per_min"] == 7
        assert snap["series"]["processor"][-1]["tokens"] == 9


async def _scope_deltas(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    """The next ``n`` scope deltas, skipping runs, instances and budgets."""
    found: list[dict[str, Any]] = []
    while len(found) < n:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["type"] == "delta" and msg["delta"]["kind"] == "scope":
            found.append(msg["delta"])
    return found


async def test_the_organisations_status_is_in_the_snapshot_and_live(
    gateway: GatewayApp, seeded: Store
) -> None:
    async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
        org = (await _snapshot(ws))["state"]["org"]
        assert (org["org_id"], org["status"]["state"]) == ("acme", "healthy")
        engaged = ScopeStatus(state=ScopeState.PAUSED, reason="kill switch: drill", actor="op")
        await seeded.set_scope_status("org", "acme", engaged)
        await seeded.set_scope_status("service", "risk-ops", ScopeStatus(state=ScopeState.PAUSED))
        first, second = await _scope_deltas(ws, 2)
        assert (first["scope"], first["scope_id"]) == ("org", "acme")
        assert first["status"]["state"] == "paused" and first["status"]["reason"].endswith("drill")
        assert (second["scope"], second["scope_id"]) == ("service", "risk-ops")
