"""Shared fixtures: one real broker and one real Redis for the whole session.

The embedded servers are used unless ``HELM_KAFKA_BOOTSTRAP`` / ``HELM_REDIS_URL`` point at real
ones. Every test gets its own topic prefix and Redis key prefix, so tests never see each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from helm.embedded import EmbeddedBroker, EmbeddedRedis
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("HELM_KAFKA_BOOTSTRAP"):
        yield os.environ["HELM_KAFKA_BOOTSTRAP"]
        return
    broker = EmbeddedBroker()
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("HELM_REDIS_URL"):
        yield os.environ["HELM_REDIS_URL"]
        return
    server = EmbeddedRedis()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def key_prefix(test_id: str) -> str:
    return f"test:{test_id}:"


@pytest.fixture
def topic_prefix(test_id: str) -> str:
    return f"t{test_id}."


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, topic_prefix: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, fetch_max_wait_ms=20)


@pytest.fixture
def redis_settings(redis_url: str, key_prefix: str) -> RedisSettings:
    return RedisSettings(url=redis_url, prefix=key_prefix)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def store(redis_settings: RedisSettings) -> AsyncIterator[Store]:
    store = Store(redis_settings)
    try:
        yield store
    finally:
        await store.close()
