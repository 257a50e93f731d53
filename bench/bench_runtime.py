"""Runtime benchmark: measuring an agent's task backlog, beside a plain ListOffsets call.

The autoscaler measures every agent's backlog each ``scale_interval_s``. Because the embedded
broker's ListOffsets answers with the last batch's base offset + 1, ``Backlog.of`` also fetches
the last batch of each partition; this line says what that correction costs, per measurement,
against the ListOffsets call alone (same topic: 4 partitions, 2,000 tasks in batches, 500 done),
and records both answers beside the truth. A measurement is several round trips (ListOffsets, one
fetch, the committed offset of each partition): the goal is at most 20 ListOffsets' worth.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import Line, ratio_line
from helm import contracts as c
from helm.bus import Bus
from helm.embedded import EmbeddedBroker
from helm.settings import KafkaSettings
from services.runtime.backlog import Backlog, worker_group

AGENT, TASKS, DONE, ROUNDS = "bench-agent", 2000, 500, 50


async def _finish(settings: KafkaSettings, count: int) -> None:
    """Consume and commit ``count`` tasks as the agent's workers would."""
    topic = settings.topic_prefix + c.tasks_topic(AGENT)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=worker_group(AGENT),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        done = 0
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=count - done)
            done += sum(len(records) for records in batch.values())
        await consumer.commit()
    finally:
        await consumer.stop()


async def _per_second(call: object) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        await call()  # type: ignore[operator]
    return ROUNDS / (time.perf_counter() - start)


async def _measure(settings: KafkaSettings) -> Line:
    bus = Bus(settings, "bench-runtime")
    await bus.start()
    backlog = Backlog(settings)
    plain = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False)
    await plain.start()
    try:
        await bus.ensure_topics([c.tasks_topic(AGENT)])
        tasks = [c.TaskRequested(agent_id=AGENT, input=f"task {n}") for n in range(TASKS)]
        await bus.publish_many(c.tasks_topic(AGENT), tasks)
        await _finish(settings, DONE)
        topic = settings.topic_prefix + c.tasks_topic(AGENT)
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        listed = sum((await plain.end_offsets(tps)).values())
        measured = await backlog.of(AGENT)
        ours = await _per_second(lambda: backlog.of(AGENT))
        baseline = await _per_second(lambda: plain.end_offsets(tps))
    finally:
        await plain.stop()
        await backlog.close()
        await bus.stop()
    return ratio_line(
        "runtime backlog measurements (fetch-corrected vs ListOffsets only)",
        ours,
        baseline,
        "per s",
        0.05,
        backlog=measured,
        true_backlog=TASKS - DONE,
        listoffsets_total_end=listed,
        true_total_end=TASKS,
    )


async def run() -> list[Line]:
    broker = EmbeddedBroker()
    broker.start()
    try:
        settings = KafkaSettings(bootstrap=broker.bootstrap, topic_prefix="bench.")
        return [await _measure(settings)]
    finally:
        broker.stop()


if __name__ == "__main__":
    for line in asyncio.run(run()):
        print(line)
