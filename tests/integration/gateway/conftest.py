"""A gateway on the session's real broker and Redis, with its loops running, and seeded state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from helm import contracts as c
from helm.bus import Bus
from helm.runner import run_loops
from helm.settings import KafkaSettings, RedisSettings
from helm.state import AgentMeta, AgentState, Status
from helm.store import Store
from services.gateway.app import GatewayApp, build_app
from services.gateway.settings import GatewaySettings
from tests.waiting import eventually

TOKEN = "op-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HIERARCHY = {
    "org": {"id": "acme", "name": "Acme"},
    "services": [
        {"id": "risk-ops", "name": "Risk operations", "agents": ["classifier", "processor"]}
    ],
}


@pytest.fixture
def settings(kafka_settings: KafkaSettings, redis_settings: RedisSettings) -> GatewaySettings:
    return GatewaySettings(
        kafka=kafka_settings,
        redis=redis_settings,
        operator_token=SecretStr(TOKEN),
        port=0,
        chat_timeout_s=3.0,
        poll_interval_s=0.5,
    )


async def start_gateway(settings: GatewaySettings) -> tuple[GatewayApp, asyncio.Event, Any]:
    app = build_app(settings)
    await app.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_loops(app.loops(stop), stop))
    await asyncio.wait_for(app.replies.ready.wait(), 15)
    await asyncio.wait_for(app.hub.subscribed.wait(), 15)
    return app, stop, task


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[GatewayApp]:
    app, stop, task = await start_gateway(settings)
    try:
        yield app
    finally:
        stop.set()
        await task
        await app.stop()


@pytest.fixture
async def seeded(store: Store) -> Store:
    await store.put_hierarchy(HIERARCHY)
    for agent_id in ("classifier", "processor"):
        await store.put_meta(AgentMeta(agent_id=agent_id, service_id="risk-ops", org_id="acme"))
        await store.set_status(agent_id, Status(state=AgentState.HEALTHY))
    return store


@pytest.fixture
async def client(gateway: GatewayApp, seeded: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.api)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


@dataclass
class Tap:
    """Collects every message published on some topics, read from the beginning."""

    messages: list[BaseModel] = field(default_factory=list)

    async def on(self, message: BaseModel) -> None:
        self.messages.append(message)

    async def wait_for(self, kind: type[BaseModel], **fields: object) -> BaseModel:
        def probe() -> BaseModel | None:
            for m in self.messages:
                if isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items()):
                    return m
            return None

        async def aprobe() -> BaseModel | None:
            return probe()

        return await eventually(aprobe, 15, what=f"{kind.__name__} {fields}")


@pytest.fixture
async def bus(kafka_settings: KafkaSettings) -> AsyncIterator[Bus]:
    bus = Bus(kafka_settings, "test-gateway-tap")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


@pytest.fixture
async def control_tap(bus: Bus, gateway: GatewayApp) -> AsyncIterator[Tap]:
    tap = Tap()
    stop = asyncio.Event()
    consumer = bus.consumer([c.CONTROL], None, tap.on)
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(consumer.ready.wait(), 15)
    try:
        yield tap
    finally:
        stop.set()
        await task
