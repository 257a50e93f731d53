"""Size limits, both ways: what is too large is refused with a reason that names the limit.

- Helm's producer refuses a message above ``HELM_KAFKA_MAX_MESSAGE_BYTES`` before sending it.
- The embedded broker (Tansu) accepts a 10 MB record from a foreign producer and hands it out
  whole, whatever the fetch size; a consumer dead-letters it as too large (keeping its first
  half-megabyte) and goes on. A broker that does honour the fetch size makes aiokafka raise
  ``RecordTooLargeError`` after skipping the record; the consumer records that and goes on too.
- The gateway refuses a request body above ``HELM_GATEWAY_MAX_BODY_BYTES`` with a 413.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import RecordTooLargeError

from helm import codec
from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.gateway.app import GatewayApp
from services.observer.app import build_app as observer
from services.observer.settings import ObserverSettings
from tests.fuzz.harness import flood, tap
from tests.fuzz.strategies import Payload
from tests.integration.services import common, running
from tests.waiting import eventually

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
async def bus(kafka_settings: KafkaSettings) -> AsyncIterator[Bus]:
    bus = Bus(kafka_settings, "fuzz-limits")
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    try:
        yield bus
    finally:
        await bus.stop()


async def _end(settings: KafkaSettings, base: str) -> int:
    probe = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap)
    await probe.start()
    try:
        parts = [
            TopicPartition(settings.topic_prefix + base, p) for p in range(settings.partitions)
        ]
        return sum((await probe.end_offsets(parts)).values())
    finally:
        await probe.stop()


async def test_helm_refuses_to_send_a_message_above_the_limit(
    bus: Bus, kafka_settings: KafkaSettings
) -> None:
    with pytest.raises(codec.MessageTooLarge) as raw:
        await bus.publish_raw(c.TELEMETRY, b"x" * TEN_MB, "big")
    assert "10,485,760 bytes" in str(raw.value) and "1,048,576" in str(raw.value)
    assert "HELM_KAFKA_MAX_MESSAGE_BYTES" in str(raw.value)
    drift = c.DriftDetected(
        agent_id="a",
        rule="r",
        metric="m",
        observed=1,
        threshold=1,
        window=1,
        evidence_run_ids=["r" * 100] * 20_000,
    )
    with pytest.raises(codec.MessageTooLarge, match=r"helm\.drift: message too large"):
        await bus.publish(c.DRIFT, drift)
    with pytest.raises(codec.MessageTooLarge):
        await bus.publish_many(c.DRIFT, [drift])
    assert await _end(kafka_settings, c.TELEMETRY) == 0
    assert await _end(kafka_settings, c.DRIFT) == 0


async def test_a_10_mb_event_is_dead_lettered_as_too_large_and_the_consumer_goes_on(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> None:
    obs = observer(ObserverSettings(**common(kafka_settings, redis_settings)))
    huge = b'{"agent_id": "big", "error": "' + b"e" * TEN_MB + b'"}'
    after = c.RunCompleted(agent_id="after-big", input_tokens=3)
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(obs):
        [sent] = await f.send(c.TELEMETRY, [Payload(huge, "huge", key=b"big")])
        await f.send(c.TELEMETRY, [Payload(codec.encode(after), "valid", key=b"big")])
        await eventually(lambda: _runs(store, "after-big"), 60, what="the run after the big one")
        letter = await eventually(lambda: _letter(letters.items), 30, what="the dead letter")
    assert (letter.source_topic, letter.partition, letter.offset) == (
        c.TELEMETRY,
        sent.partition,
        sent.offset,
    )
    assert letter.reason.startswith("message too large: 10,485,7")
    assert "limit of 1,048,576 (HELM_KAFKA_MAX_MESSAGE_BYTES)" in letter.reason
    assert "payload truncated to its first 524,288 bytes" in letter.reason
    assert base64.b64decode(letter.payload_b64) == huge[:524_288]
    assert (
        obs.registry.get_sample_value(
            "helm_bus_deadlettered_messages_total", {"topic": c.TELEMETRY}
        )
        == 1
    )


async def test_a_record_too_large_to_fetch_is_skipped_with_a_dead_letter(
    bus: Bus, kafka_settings: KafkaSettings
) -> None:
    """Fault injection: aiokafka's own reaction to such a record, which Tansu never provokes."""
    seen: list[c.RunCompleted] = []

    async def keep(run: c.RunCompleted) -> None:
        seen.append(run)

    consumer = bus.consumer([c.TELEMETRY], "fuzz-too-large", keep)
    make = consumer._make

    def refusing() -> AIOKafkaConsumer:
        return cast(AIOKafkaConsumer, _Refusing(make()))

    consumer._make = refusing  # type: ignore[method-assign]
    stop = asyncio.Event()
    runs = [c.RunCompleted(agent_id="a", run_id=f"r{i}") for i in range(2)]
    async with tap(kafka_settings) as letters:
        for run in runs:
            await bus.publish_raw(c.TELEMETRY, codec.encode(run), "same-partition")
        task = asyncio.create_task(consumer.run(stop))
        try:
            await eventually(lambda: _true(len(seen) == 1), 30, what="the record after it")
            letter = await eventually(lambda: _letter(letters.items), 30, what="the dead letter")
        finally:
            stop.set()
            await task
    assert seen[0].run_id == "r1" and letter.offset == 0 and letter.payload_b64 == ""
    assert letter.reason.startswith("record too large to fetch (above the fetch size of 1,114,112")


class _Refusing:
    """An aiokafka consumer whose first fetch meets a record above the fetch size."""

    def __init__(self, inner: AIOKafkaConsumer) -> None:
        self.inner, self.refused = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def getmany(self, *args: Any, **kwargs: Any) -> Any:
        batch = await self.inner.getmany(*args, **kwargs)
        if batch and not self.refused:
            self.refused = True
            tp, records = next(iter(batch.items()))
            self.inner.seek(tp, records[0].offset + 1)  # as aiokafka does: past the record
            raise RecordTooLargeError("too large", tp, records[0].offset, 1_114_112)
        return batch


async def _letter(items: list[c.DeadLettered]) -> c.DeadLettered | None:
    return items[0] if items else None


async def _true(value: bool) -> bool:
    return value


async def _runs(store: Store, agent: str) -> bool:
    return int((await store.get_metrics(agent)).get("runs") or 0) >= 1


async def test_a_1_mb_chat_query_is_refused_naming_the_limit(gateway: GatewayApp) -> None:
    url = f"http://127.0.0.1:{gateway.port}/agent/classifier/query"
    query = {"query": "q" * 1_000_000}
    async with httpx.AsyncClient(timeout=10) as http:
        sized = await http.post(url, json=query)
        chunked = await http.post(url, content=_chunks(b'{"query": "' + b"q" * 1_000_000 + b'"}'))
        long = await http.post(url, json={"query": "q" * 100_000})
        small = await http.post(url, json={"query": "are you there?"})
    for refused in (sized, chunked):
        assert refused.status_code == 413
        assert (
            "above the limit of 262,144 bytes (HELM_GATEWAY_MAX_BODY_BYTES)"
            in refused.json()["error"]
        )
    assert long.status_code == 422 and "at most 20000 characters" in long.json()["error"]
    assert small.status_code == 504 and "did not answer" in small.json()["error"]


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 65_536):
        yield body[i : i + 65_536]
