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
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import RecordTooLargeError
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from helm import codec
from helm import contracts as c
from helm.metrics import BusMetrics
from helm.settings import KafkaSettings

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]
# A batch handler gets the messages of one partition and the position after them
# (base topic, partition, next offset), so it can store that position with its effect.
Position = tuple[str, int, int]
BatchHandler = Callable[[list[Any], Position], Awaitable[None]]
# Where to resume a newly assigned partition (None: the group's committed offset).
ResumeFrom = Callable[[str, int], Awaitable[int | None]]
LAG_EVERY_S = 5.0
TRANSIENT = (ConnectionError, TimeoutError, OSError, RedisConnectionError, RedisTimeoutError)


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


class Consumer:
    """Reads, decodes, hands to the handler, then commits. See the module docstring."""

    def __init__(
        self,
        bus: Bus,
        bases: Sequence[str],
        group: str | None,
        handler: Handler | None,
        batch_handler: BatchHandler | None,
        from_latest: bool,
        max_attempts: int,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self.bus, self.bases, self.group = bus, list(bases), group
        self.handler, self.batch_handler = handler, batch_handler
        self.from_latest, self.max_attempts = from_latest, max_attempts
        self.ready = asyncio.Event()
        self.resume_from: ResumeFrom | None = None
        self.dead_letters = True
        self._kafka: AIOKafkaConsumer | None = None

    def _make(self) -> AIOKafkaConsumer:
        s = self.bus.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap,
            client_id=self.bus.client_id,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="latest" if self.from_latest else "earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(1000, s.session_timeout_ms // 4),
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=s.max_message_bytes + 65536,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; commit what was handled, then leave the group."""
        kafka = self._kafka = self._make()
        topics = [self.bus.topic(b) for b in self.bases]
        listener = _Resume(self) if self.resume_from is not None else None
        if listener is not None:
            kafka.subscribe(topics, listener=listener)
        else:
            kafka.subscribe(topics)
        await kafka.start()
        try:
            await self._settle_positions(kafka, stop)
            self.ready.set()
            next_lag = 0.0
            while not stop.is_set():
                try:
                    batch = await kafka.getmany(timeout_ms=200, max_records=500)
                except RecordTooLargeError as exc:
                    await self._skipped_too_large(exc)
                    continue
                for records in batch.values():
                    await self._handle_records(records, stop)
                if batch and self.group is not None:
                    await kafka.commit()
                if self.group is not None and time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + LAG_EVERY_S
                    self.bus.metrics.lag.labels(self.group).set(await self.lag())
        finally:
            self._kafka = None
            await kafka.stop()

    async def _skipped_too_large(self, exc: RecordTooLargeError) -> None:
        """aiokafka moved past a record larger than the fetch size: dead-letter its place."""
        tp, offset = (exc.args[1], exc.args[2]) if len(exc.args) >= 3 else (None, -1)
        topic = tp.topic if tp is not None else self.bus.topic(self.bases[0])
        partition = tp.partition if tp is not None else -1
        record = ConsumerRecord(topic, partition, offset, -1, 0, None, None, None, -1, -1, ())
        limit = self.bus.settings.max_message_bytes + 65536
        reason = f"record too large to fetch (above the fetch size of {limit:,} bytes); skipped"
        await self.bus.dead_letter(record, self.group or self.bus.client_id, reason)

    async def _settle_positions(self, kafka: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Wait for an assignment and resolve every position, so ``ready`` means "reading".

        A consumer without a group starts at the end; until its positions are resolved, a
        message produced meanwhile could fall before them unseen.
        """
        if self.group is not None:
            return
        deadline = asyncio.get_running_loop().time() + 30
        while not kafka.assignment() and not stop.is_set():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no partitions assigned for {self.bases}")
            await asyncio.sleep(0.01)
        for tp in kafka.assignment():
            await kafka.position(tp)

    async def _handle_records(
        self, records: list[ConsumerRecord[bytes, bytes]], stop: asyncio.Event
    ) -> None:
        good: list[tuple[Any, ConsumerRecord[bytes, bytes]]] = []
        if not records:
            return
        base = self.bus.base(records[0].topic)  # one partition's records: one topic
        self.bus.metrics.consumed.labels(base).inc(len(records))
        for record in records:
            try:
                limit = self.bus.settings.max_message_bytes
                good.append((codec.decode(base, record.value, limit), record))
            except codec.DecodeError as exc:
                if self.dead_letters:
                    await self.bus.dead_letter(record, self.group or self.bus.client_id, str(exc))
        if not good:
            return
        batch_handler, handler = self.batch_handler, self.handler
        if batch_handler is not None:
            await self._batch(batch_handler, good, records[-1], stop)
            return
        assert handler is not None
        for message, record in good:
            await self._attempt(functools.partial(handler, message), record, stop)

    async def _batch(
        self,
        handler: BatchHandler,
        good: list[tuple[Any, ConsumerRecord[bytes, bytes]]],
        last: ConsumerRecord[bytes, bytes],
        stop: asyncio.Event,
    ) -> None:
        """The batch at once; if it keeps failing, one message at a time, so that only the
        messages that fail are dead-lettered and the others still reach the handler."""
        where = (self.bus.base(last.topic), last.partition, last.offset + 1)
        messages, alone = [m for m, _ in good], len(good) == 1
        call = functools.partial(handler, messages, where)
        if await self._attempt(call, good[-1][1], stop, dead_letter=alone) or alone:
            return
        for message, record in good:
            one = where if record is good[-1][1] else (where[0], where[1], record.offset + 1)
            await self._attempt(functools.partial(handler, [message], one), record, stop)

    async def _attempt(
        self,
        call: Callable[[], Awaitable[None]],
        record: ConsumerRecord[bytes, bytes],
        stop: asyncio.Event,
        dead_letter: bool = True,
    ) -> bool:
        """True once ``call`` succeeded; False when it kept failing (and, if asked, the
        record was dead-lettered)."""
        attempt = 0
        while True:
            try:
                await call()
                return True
            except TRANSIENT as exc:
                attempt += 1
                log.warning("handler hit %r (attempt %d); retrying", exc, attempt)
            except Exception as exc:
                attempt += 1
                log.exception("handler failed (attempt %d)", attempt)
                if attempt >= self.max_attempts:
                    if dead_letter:
                        consumer = self.group or self.bus.client_id
                        await self.bus.dead_letter(record, consumer, f"handler failed: {exc!r}")
                    return False
            self.bus.metrics.handler_errors.labels(self.bus.base(record.topic)).inc()
            if stop.is_set():
                raise asyncio.CancelledError("stopping with an unhandled message; not committed")
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt))

    async def lag(self) -> int:
        """Messages behind the end of the assigned partitions (0 when not running)."""
        kafka = self._kafka
        if kafka is None:
            return 0
        parts = kafka.assignment()
        if not parts:
            return 0
        ends = await kafka.end_offsets(list(parts))
        total = 0
        for tp, end in ends.items():
            pos = await kafka.position(tp)
            total += max(0, end - pos)
        return total


class _Resume(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seeks newly assigned partitions to where the handler's stored state says to resume."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        kafka, resume = self.consumer._kafka, self.consumer.resume_from
        if kafka is None or resume is None:
            return
        for tp in assigned:
            offset = await resume(self.consumer.bus.base(tp.topic), tp.partition)
            if offset is not None:
                kafka.seek(tp, offset)
