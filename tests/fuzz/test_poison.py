"""A message that decodes but makes its handler fail does not block its partition.

The bus retries a handler that fails with anything but an infrastructure error ``max_attempts``
times, then dead-letters the message with why, and goes on; the messages behind it are handled
and the group's offset moves past it. A batch handler that keeps failing on a batch is given its
messages one at a time, so only the bad one is dead-lettered and the rest still count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from helm import contracts as c
from helm.bus import Bus, Position
from helm.metrics import BusMetrics, new_registry
from helm.settings import KafkaSettings
from tests.fuzz.harness import tap
from tests.waiting import eventually

POISON = "poison"


@pytest.fixture(autouse=True)
def quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="helm.bus")  # the failures are the point


@pytest.fixture
def registry() -> CollectorRegistry:
    return new_registry()


@pytest.fixture
async def bus(kafka_settings: KafkaSettings, registry: CollectorRegistry) -> AsyncIterator[Bus]:
    bus = Bus(kafka_settings, "fuzz-poison", BusMetrics(registry))
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    try:
        yield bus
    finally:
        await bus.stop()


def runs() -> list[c.RunCompleted]:
    """Five runs of one agent (one partition, in order), the third of which poisons."""
    return [c.RunCompleted(agent_id="same", run_id=POISON if i == 2 else f"r{i}") for i in range(5)]


async def test_a_failing_message_is_retried_dead_lettered_and_passed(
    bus: Bus, kafka_settings: KafkaSettings, registry: CollectorRegistry
) -> None:
    handled: list[str] = []

    async def handler(run: c.RunCompleted) -> None:
        if run.run_id == POISON:
            raise ValueError("this run cannot be handled")
        handled.append(run.run_id)

    consumer = bus.consumer([c.TELEMETRY], "fuzz-poison", handler, max_attempts=3)
    stop = asyncio.Event()
    async with tap(kafka_settings) as letters:
        await bus.publish_many(c.TELEMETRY, runs())
        task = asyncio.create_task(consumer.run(stop))
        try:
            await eventually(lambda: _true(len(handled) == 4), 30, what="the runs behind it")
            await eventually(lambda: _true(bool(letters.items)), 30, what="its dead letter")
        finally:
            stop.set()
            await task
    assert handled == ["r0", "r1", "r3", "r4"]
    [letter] = letters.items
    assert letter.offset == 2 and letter.consumer == "fuzz-poison"
    assert letter.reason == "handler failed: ValueError('this run cannot be handled')"
    retried = registry.get_sample_value("helm_bus_handler_errors_total", {"topic": c.TELEMETRY})
    assert retried == 2  # two failed attempts were retried; the third gave up
    dead = registry.get_sample_value("helm_bus_deadlettered_messages_total", {"topic": c.TELEMETRY})
    assert dead == 1


async def test_a_batch_with_a_bad_message_is_handled_one_by_one(
    bus: Bus, kafka_settings: KafkaSettings
) -> None:
    handled: list[str] = []
    positions: list[Position] = []

    async def batch(items: list[c.RunCompleted], where: Position) -> None:
        if any(run.run_id == POISON for run in items):
            raise ValueError("a batch with the poison in it")
        handled.extend(run.run_id for run in items)
        positions.append(where)

    consumer = bus.consumer([c.TELEMETRY], "fuzz-batch", batch_handler=batch, max_attempts=2)
    stop = asyncio.Event()
    async with tap(kafka_settings) as letters:
        await bus.publish_many(c.TELEMETRY, runs())
        task = asyncio.create_task(consumer.run(stop))
        try:
            await eventually(lambda: _true(len(handled) == 4), 30, what="the good runs")
            await eventually(lambda: _true(bool(letters.items)), 30, what="the poison's letter")
        finally:
            stop.set()
            await task
    assert sorted(handled) == ["r0", "r1", "r3", "r4"]
    assert [letter.offset for letter in letters.items] == [2]
    assert positions[-1][2] == 5  # the stored position is past the whole batch


async def _true(value: bool) -> bool:
    return value
