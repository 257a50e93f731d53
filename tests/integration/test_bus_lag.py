"""The consumer-lag gauge counts every message a group has not handled yet.

The embedded broker answers ListOffsets "latest" with the base offset of the last batch plus one,
so a lag computed from it alone misses most of a batch. ``Consumer.lag`` takes the end from the
consumer's own fetches as well; this test holds a handler on purpose and checks the count.
"""

from __future__ import annotations

import asyncio

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings
from tests.waiting import eventually

SENT = 1_000


async def test_lag_counts_the_whole_backlog_of_a_held_consumer(
    kafka_settings: KafkaSettings,
) -> None:
    bus = Bus(kafka_settings, "lag-test")
    await bus.start()
    await bus.ensure_topics([c.TELEMETRY])
    release, handled = asyncio.Event(), 0

    async def slow(run: c.RunCompleted) -> None:
        nonlocal handled
        await release.wait()
        handled += 1

    consumer = bus.consumer([c.TELEMETRY], "lag-test", slow)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        # One agent: one partition, produced in large batches (the case the broker miscounts).
        runs = [c.RunCompleted(agent_id="lag-agent", input_tokens=i) for i in range(SENT)]
        await bus.publish_many(c.TELEMETRY, runs)
        kafka = consumer._kafka
        assert kafka is not None

        async def held_at() -> int | None:
            parts = [tp for tp in kafka.assignment() if kafka.highwater(tp)]
            return sum([await kafka.position(tp) for tp in parts]) if parts else None

        position = await eventually(held_at, what="the consumer holding its first fetch")
        assert 0 < position < SENT
        assert await consumer.lag() == SENT - position
        release.set()

        async def caught_up() -> bool | None:
            return True if handled == SENT and await consumer.lag() == 0 else None

        await eventually(caught_up, what="every run handled and the lag back to 0")
    finally:
        release.set()
        stop.set()
        await task
        await bus.stop()
