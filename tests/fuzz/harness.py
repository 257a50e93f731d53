"""Publishing fuzz payloads fast, and judging what the consumers made of them.

Payloads go out through a plain aiokafka producer, not Helm's ``Bus``: bad input comes from
producers that do not follow Helm's rules, and this one may send what ``Bus`` would refuse.
Every record's partition and offset come back from the broker, so each dead letter can be matched
with the exact payload it stands for. The verdict for each payload is the contract's own
(``codec.decode``): what it refuses must be dead-lettered with that reason, and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from helm import codec
from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings
from tests.fuzz.strategies import Payload
from tests.waiting import eventually

BIG = 16 * 1024 * 1024  # the flood producer sends what Bus would refuse


@dataclass(frozen=True)
class Sent:
    payload: Payload
    partition: int
    offset: int


class Flood:
    """A producer that batches: every payload is queued, then all acknowledgements awaited."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, max_request_size=BIG, linger_ms=20, acks="all"
        )

    async def send(self, base: str, payloads: Iterable[Payload]) -> list[Sent]:
        topic = self.settings.topic_prefix + base
        batch = list(payloads)
        futures = [
            await self.producer.send(topic, p.value, key=p.key or b"fuzz-%d" % i)
            for i, p in enumerate(batch)
        ]
        acks = await asyncio.gather(*futures)
        return [Sent(p, a.partition, a.offset) for p, a in zip(batch, acks, strict=True)]


@asynccontextmanager
async def flood(settings: KafkaSettings) -> AsyncIterator[Flood]:
    f = Flood(settings)
    await f.producer.start()
    try:
        yield f
    finally:
        await f.producer.stop()


@dataclass
class Tap:
    """Every message on one of the test's topics (the dead letters by default), from the start."""

    items: list[Any] = field(default_factory=list)

    async def on(self, message: Any) -> None:
        self.items.append(message)

    def of(self, base: str, consumer: str) -> dict[tuple[int, int], c.DeadLettered]:
        """The dead letters one consumer wrote for one topic, by (partition, offset)."""
        return {
            (x.partition, x.offset): x
            for x in self.items
            if x.source_topic == base and x.consumer == consumer
        }


@asynccontextmanager
async def tap(settings: KafkaSettings, base: str = c.DEADLETTER) -> AsyncIterator[Tap]:
    bus, found, stop = Bus(settings, f"fuzz-tap-{base}"), Tap(), asyncio.Event()
    await bus.ensure_topics(c.FIXED_TOPICS)
    await bus.start()
    reader = asyncio.create_task(bus.consumer([base], None, found.on).run(stop))
    try:
        yield found
    finally:
        stop.set()
        await reader
        await bus.stop()


def refusals(base: str, sent: list[Sent], limit: int) -> dict[tuple[int, int], tuple[Sent, str]]:
    """The contract's verdict: each payload it refuses, by (partition, offset), with why."""
    out: dict[tuple[int, int], tuple[Sent, str]] = {}
    for s in sent:
        try:
            codec.decode(base, s.payload.value, limit)
        except codec.DecodeError as exc:
            out[(s.partition, s.offset)] = (s, str(exc))
    return out


def counter(registry: CollectorRegistry, name: str, topic: str) -> float:
    return registry.get_sample_value(name, {"topic": topic}) or 0.0


def deadlettered(registry: CollectorRegistry, topic: str) -> float:
    return counter(registry, "helm_bus_deadlettered_messages_total", topic)


async def wait_consumed(registries: list[CollectorRegistry], base: str, n: int) -> None:
    """Until every service's consumer of ``base`` has read ``n`` records: none stalled."""

    async def probe() -> bool:
        return all(counter(r, "helm_bus_consumed_messages_total", base) >= n for r in registries)

    await eventually(probe, 90, 0.1, f"every consumer to read {n} records of {base}")


async def handled(settings: KafkaSettings, group: str, base: str, sent: list[Sent]) -> None:
    """Until ``group`` has committed past every record in ``sent``: the bus commits only after
    handling (and retrying, and dead-lettering), so its counters are final then."""
    ends: dict[int, int] = {}
    for s in sent:
        ends[s.partition] = max(ends.get(s.partition, 0), s.offset + 1)
    topic = settings.topic_prefix + base
    # a consumer that never subscribes reads the group's offsets without joining it
    probe = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group)
    await probe.start()
    try:

        async def done() -> bool:
            for partition, end in ends.items():
                if (await probe.committed(TopicPartition(topic, partition)) or 0) < end:
                    return False
            return True

        await eventually(done, 120, 0.2, f"{group} to handle {len(sent)} records of {base}")
    finally:
        await probe.stop()


async def barrier(
    f: Flood, base: str, n: int, registries: list[CollectorRegistry], after: list[Payload]
) -> None:
    """For a consumer without a group: wait until the ``n`` records on ``base`` are handled,
    then send ``after``. Only valid when nothing else publishes to ``base``.

    A consumer fetches again only once it has handled (retried, dead-lettered) everything it
    fetched before; so when it has read a record sent after it read the ``n`` records, all ``n``
    are done, and its dead-letter counter is final.
    """
    await wait_consumed(registries, base, n)
    await f.send(base, after)
    await wait_consumed(registries, base, n + len(after))


async def check_refused(
    letters: Tap,
    base: str,
    consumer: str,
    sent: list[Sent],
    registry: CollectorRegistry,
    limit: int,
) -> int:
    """After ``handled`` or ``barrier``: every refused payload, and only those, is dead-lettered once with its
    reason and bytes, and the service's dead-letter counter says how many. Returns that number."""
    want = refusals(base, sent, limit)
    assert deadlettered(registry, base) == len(want), (deadlettered(registry, base), len(want))

    async def all_in() -> bool:
        return len(letters.of(base, consumer)) >= len(want)

    await eventually(all_in, 60, 0.1, f"{len(want)} dead letters of {consumer} on {base}")
    got = letters.of(base, consumer)
    missing = [want[k][0].payload for k in want.keys() - got.keys()]
    extra = [(got[k].reason, _payload(got[k])[:300]) for k in got.keys() - want.keys()]
    assert not extra, f"{len(extra)} usable payloads dead-lettered, e.g. {extra[:3]}"
    assert not missing, f"{len(missing)} refused payloads not dead-lettered, e.g. {missing[:3]}"
    for where, (s, reason) in want.items():
        letter = got[where]
        assert letter.reason.startswith(reason[:2000]), (letter.reason, reason)
        assert _payload(letter) == (s.payload.value or b"")[: limit // 2], s.payload
    return len(want)


def _payload(letter: c.DeadLettered) -> bytes:
    return base64.b64decode(letter.payload_b64)
