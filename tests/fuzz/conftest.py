"""Fixtures of the fuzz suite, on the session's real broker and Redis as everywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from helm.settings import KafkaSettings, RedisSettings
from helm.state import AgentMeta, AgentState, Status
from helm.store import Store
from services.gateway.app import GatewayApp
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import HIERARCHY, TOKEN, start_gateway


@pytest.fixture
async def gateway(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> AsyncIterator[GatewayApp]:
    """A gateway with its loops running over the acme hierarchy; no agent answers its chats,
    which therefore end in a 504 after 0.3 s."""
    settings = GatewaySettings(
        kafka=kafka_settings,
        redis=redis_settings,
        operator_token=SecretStr(TOKEN),
        port=0,
        chat_timeout_s=0.3,
        poll_interval_s=0.5,
    )
    app, stop, task = await start_gateway(settings)
    try:
        await store.put_hierarchy(HIERARCHY)
        for agent_id in ("classifier", "processor"):
            await store.put_meta(AgentMeta(agent_id=agent_id, service_id="risk-ops", org_id="acme"))
            await store.set_status(agent_id, Status(state=AgentState.HEALTHY))
        yield app
    finally:
        stop.set()
        await task
        await app.stop()
