"""An agent's task backlog: what was published to ``helm.tasks.<agent>`` and is not done yet.

The backlog is the consumer lag of the workers' group ``worker.<agent>``: per partition, the end
offset minus the group's committed offset (the beginning when it committed none, as the workers
start from the earliest). Workers commit after the effect, so a task counts until it is done.
One client per agent reads committed offsets without joining the group, so measuring never
moves a partition between workers.

The end offset is read from a fetch, not from ListOffsets alone: the embedded broker (Tansu 0.6)
answers ListOffsets with the base offset of the last *batch* plus one, so a batch of 15 tasks
looks like 1. Fetching from that offset returns the last batch, whose records (and the fetch's
high watermark) give the true end. Partitions stay paused between measurements: no prefetching.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from helm import contracts as c
from helm.settings import KafkaSettings

log = logging.getLogger(__name__)

FETCH_DEADLINE_S = 2.0


def worker_group(agent_id: str) -> str:
    """The consumer group an agent's workers share for its tasks."""
    return f"worker.{agent_id}"


def lag(ends: dict[int, int], committed: dict[int, int | None], begins: dict[int, int]) -> int:
    """Unfinished messages over partitions: end minus committed (or beginning), never negative."""
    total = 0
    for partition, end in ends.items():
        done = committed.get(partition)
        total += max(0, end - (begins.get(partition, 0) if done is None else done))
    return total


class Backlog:
    """Measures backlogs; ``of`` returns None when Kafka cannot say (not a scaling signal)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._clients: dict[str, tuple[AIOKafkaConsumer, list[TopicPartition]]] = {}

    async def _client(self, agent_id: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        if agent_id in self._clients:
            return self._clients[agent_id]
        topic = self.settings.topic_prefix + c.tasks_topic(agent_id)
        client = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            group_id=worker_group(agent_id),
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            client_id=f"helm-runtime-backlog-{agent_id}",
        )
        await client.start()
        await client.topics()  # metadata of existing topics (creates none)
        tps = [TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic) or ())]
        if not tps:
            await client.stop()
            raise LookupError(f"no topic {topic} yet")
        client.assign(tps)
        client.pause(*tps)
        self._clients[agent_id] = (client, tps)
        return client, tps

    async def of(self, agent_id: str) -> int | None:
        try:
            client, tps = await self._client(agent_id)
            ends = await self._ends(client, tps)
            committed = {tp.partition: await client.committed(tp) for tp in tps}
            fresh = [tp for tp in tps if committed[tp.partition] is None]
            begins = await client.beginning_offsets(fresh) if fresh else {}
        except (KafkaError, OSError, LookupError) as exc:
            log.warning("backlog of %s unknown: %r", agent_id, exc)
            await self.forget(agent_id)
            return None
        return lag(ends, committed, {tp.partition: o for tp, o in begins.items()})

    async def _ends(self, client: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[int, int]:
        listed: dict[TopicPartition, int] = await client.end_offsets(tps)
        ends = {tp.partition: listed[tp] for tp in tps}
        pending = [tp for tp in tps if listed[tp] > 0]
        for tp in pending:
            client.seek(tp, listed[tp] - 1)  # inside the last batch: it is returned whole
        client.resume(*pending)
        deadline = time.monotonic() + FETCH_DEADLINE_S
        try:
            while pending and time.monotonic() < deadline:
                fetched = await client.getmany(*pending, timeout_ms=200)
                for tp, records in fetched.items():
                    if records:
                        high = client.highwater(tp) or 0
                        ends[tp.partition] = max(listed[tp], records[-1].offset + 1, high)
                        pending.remove(tp)
        finally:
            client.pause(*tps)
        return ends

    async def forget(self, agent_id: str) -> None:
        entry = self._clients.pop(agent_id, None)
        if entry is not None:
            await entry[0].stop()

    async def close(self) -> None:
        for agent_id in list(self._clients):
            await self.forget(agent_id)
