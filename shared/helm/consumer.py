"""Consumers of the bus: read, decode, hand to the handler, then commit.

See ``helm.bus`` for the guarantees. A consumer in a group commits only after every handler before
the committed position returned; what cannot be decoded is dead-lettered (unless the consumer only
watches); a failing handler is retried, transient infrastructure errors until they clear.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import RecordTooLargeError
from aiokafka.structs import ConsumerRecord
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from helm import codec

if TYPE_CHECKING:
    from helm.bus import Bus

log = logging.getLogger("helm.bus")

Handler = Callable[[Any], Awaitable[None]]
# A batch handler gets the messages of one partition and the position after them
# (base topic, partition, next offset), so it can store that position with its effect.
Position = tuple[str, int, int]
BatchHandler = Callable[[list[Any], Position], Awaitable[None]]
# Where to resume a newly assigned partition (None: the group's committed offset).
ResumeFrom = Callable[[str, int], Awaitable[int | None]]
LAG_EVERY_S = 5.0
TRANSIENT = (ConnectionError, TimeoutError, OSError, RedisConnectionError, RedisTimeoutError)


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
        for tp, listed in ends.items():
            # The embedded broker answers ListOffsets "latest" with the base offset of the last
            # batch plus one; the high watermark of this consumer's own fetches is the true end.
            end = max(listed, kafka.highwater(tp) or 0)
            total += max(0, end - await kafka.position(tp))
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
