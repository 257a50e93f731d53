"""The Kafka bus: one producer, topic creation, and consumers that never lose a message.

Guarantees:
- publishing waits for ``acks=all``;
- a consumer in a group commits an offset only after the handler of every message before it
  returned, i.e. after the effect is stored (at-least-once; handlers dedupe by ``event_id``);
- a message that cannot be decoded or validated, or is larger than ``max_message_bytes``, goes
  to ``helm.deadletter`` with its reason and raw bytes (truncated when large), and consumption
  goes on; so does a record too large to fetch at all (without its bytes);
- a message larger than ``max_message_bytes`` is refused before it is sent (``MessageTooLarge``);
- a handler that fails is retried with back-off; an infrastructure error (Redis, Kafka) is retried
  until it clears, any other error ``max_attempts`` times before the message is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from helm import codec
from helm import contracts as c
from helm.consumer import (
    TRANSIENT,
    BatchHandler,
    Consumer,
    Handler,
    Position,
    ResumeFrom,
)
from helm.metrics import BusMetrics
from helm.settings import KafkaSettings

log = logging.getLogger(__name__)
__all__ = ["TRANSIENT", "BatchHandler", "Bus", "Consumer", "Handler", "Position", "ResumeFrom"]


class Bus:
    """Producer, admin and consumer factory for one service, with the topic prefix applied."""

    def __init__(
        self, settings: KafkaSettings, client_id: str, metrics: BusMetrics | None = None
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.metrics = metrics or BusMetrics(None)
        self._producer: AIOKafkaProducer | None = None
        self._tracked: set[str] = set()

    def topic(self, base: str) -> str:
        """The real topic name of a base name such as ``helm.telemetry``."""
        return self.settings.topic_prefix + base

    def base(self, topic: str) -> str:
        """The base name of a real topic name."""
        prefix = self.settings.topic_prefix
        return topic[len(prefix) :] if prefix and topic.startswith(prefix) else topic

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            client_id=self.client_id,
            acks="all",
            linger_ms=self.settings.linger_ms,
            max_request_size=self.settings.max_message_bytes + 65536,
        )
        await self._producer.start()
        self._tracked = set()

    async def _track(self, base_topic: str) -> str:
        """The real topic name, tracked by the producer's metadata before the first send.

        aiokafka 0.14 refreshes metadata only for the topics its client tracks, and a topic it
        learnt at bootstrap is not tracked: once it sends to a new topic (a chat query to a
        task topic created after start), it forgets the other topics' leaders, and batches for
        them (dead letters) fail with NotLeaderForPartitionError after a metadata storm.
        """
        topic = self.topic(base_topic)
        if topic not in self._tracked:
            assert self._producer is not None
            await self._producer.client.add_topic(topic)
            self._tracked.add(topic)
        return topic

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ping(self) -> None:
        """Ask the broker for metadata: raises when Kafka cannot be reached."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        await self._producer.client.fetch_all_metadata()

    async def missing_topics(self, bases: Iterable[str]) -> list[str]:
        """Which of these topics the broker does not have (metadata only: nothing is created)."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        metadata = await self._producer.client.fetch_all_metadata()
        present = set(metadata.topics())
        return [b for b in bases if self.topic(b) not in present]

    async def ensure_topics(self, bases: Iterable[str]) -> None:
        """Create the topics (ignoring those that exist); never rely on auto-creation."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [self.topic(b) for b in bases]
            new = [
                NewTopic(t, self.settings.partitions, self.settings.replication_factor)
                for t in dict.fromkeys(wanted)
                if t not in existing
            ]
            if new:
                await admin.create_topics(new)
                log.info("created topics %s", ", ".join(t.name for t in new))
        finally:
            await admin.close()

    async def publish(self, base_topic: str, message: BaseModel, key: str | None = None) -> None:
        """Send one contract message and wait for the broker's acknowledgement."""
        await self.publish_raw(base_topic, codec.encode(message), key or codec.key_for(message))

    async def publish_raw(self, base_topic: str, value: bytes, key: str | None) -> None:
        """Send raw bytes; raises ``codec.MessageTooLarge`` above ``max_message_bytes``."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        codec.check_size(base_topic, value, self.settings.max_message_bytes)
        topic = await self._track(base_topic)
        await self._producer.send_and_wait(topic, value, key=key.encode() if key else None)
        self.metrics.published.labels(base_topic).inc()

    async def publish_soon(self, base_topic: str, message: BaseModel) -> asyncio.Future[Any]:
        """Queue one message in the producer's batch and return the future of its acknowledgement.

        For hot paths that must not wait a broker round trip per message; the caller keeps the
        future and awaits it later (the producer still retries and still asks for acks=all).
        """
        if self._producer is None:
            raise RuntimeError("bus not started")
        value = codec.encode(message)
        codec.check_size(base_topic, value, self.settings.max_message_bytes)
        future = await self._producer.send(
            await self._track(base_topic), value, key=codec.key_for(message).encode()
        )
        self.metrics.published.labels(base_topic).inc()
        return future  # type: ignore[no-any-return]

    async def publish_many(self, base_topic: str, messages: Sequence[BaseModel]) -> None:
        """Send several messages, batched by the producer, and wait for all acknowledgements."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        topic, values = await self._track(base_topic), [codec.encode(m) for m in messages]
        for value in values:
            codec.check_size(base_topic, value, self.settings.max_message_bytes)
        futures = [
            await self._producer.send(topic, v, key=codec.key_for(m).encode())
            for v, m in zip(values, messages, strict=True)
        ]
        await asyncio.gather(*futures)
        self.metrics.published.labels(base_topic).inc(len(messages))

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], consumer: str, reason: str
    ) -> None:
        """Keep a message that could not be used, with why, on ``helm.deadletter``."""
        base = self.base(record.topic)
        source = (base, record.partition, record.offset)
        limit = self.settings.max_message_bytes
        letter = codec.dead_letter(source, consumer, reason, record.value, record.key, limit)
        key = record.key[: codec.KEY_KEPT].decode(errors="replace") if record.key else base
        await self.publish_raw(c.DEADLETTER, codec.encode(letter), key)
        self.metrics.deadlettered.labels(base).inc()
        log.warning("dead-lettered %s[%s]@%s: %s", base, record.partition, record.offset, reason)

    def consumer(
        self,
        bases: Sequence[str],
        group: str | None,
        handler: Handler | None = None,
        *,
        batch_handler: BatchHandler | None = None,
        from_latest: bool = False,
        max_attempts: int = 5,
        resume_from: ResumeFrom | None = None,
        dead_letter: bool = True,
    ) -> Consumer:
        """A consumer of ``bases``; ``group=None`` reads every partition (from the end if asked).

        ``resume_from`` lets a handler that stores its own positions with its effects (exactly
        once) decide where each assigned partition starts. ``dead_letter=False`` is for watchers
        that only look (a tail, a test's tap): what they cannot decode they skip, since the
        services that own the topic dead-letter it already.
        """
        consumer = Consumer(self, bases, group, handler, batch_handler, from_latest, max_attempts)
        consumer.resume_from = resume_from
        consumer.dead_letters = dead_letter
        return consumer
