"""``helmctl tail TOPIC...``: print a topic's events as they come.

Reads without a consumer group, so it changes nothing for anyone (no offsets committed, nothing
dead-lettered), from the end or with ``--from-beginning`` from the start. On a terminal each event
is one readable line; piped, each is the event's JSON on its own line, which ``helmctl publish
--file`` reads back. Bytes that are not a valid event are shown as such, never dropped. Says on
stderr once it is reading, so whatever is published after that line is shown. Honours
``HELM_KAFKA_BOOTSTRAP`` and ``HELM_KAFKA_TOPIC_PREFIX``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from helm import codec
from helm.runner import install_stop
from helm.settings import KafkaSettings

HIDDEN = {"type", "schema_version", "ts", "event_id"}


class TailError(Exception):
    """The topic to tail does not exist or the broker cannot be reached."""


def add_parser(sub: Any) -> None:
    """The ``tail`` sub-command of ``helmctl``."""
    tail = sub.add_parser("tail", help="print a topic's events as they come")
    tail.add_argument("topics", nargs="+", metavar="TOPIC", help="base topic, e.g. helm.drift")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest event")
    tail.add_argument("--count", type=int, help="stop after this many events")
    tail.add_argument(
        "--key", help="only events with this Kafka key (the agent id on telemetry, drift, control)"
    )
    form = tail.add_mutually_exclusive_group()
    form.add_argument(
        "--json", dest="pretty", action="store_false", default=None, help="JSON lines"
    )
    form.add_argument("--pretty", dest="pretty", action="store_true", help="one readable line each")


def run(args: argparse.Namespace, settings: KafkaSettings, out: TextIO, err: TextIO) -> int:
    pretty = out.isatty() if args.pretty is None else bool(args.pretty)
    shown = asyncio.run(_tail(args, settings, out, err, pretty))
    return 0 if args.count is None or shown >= args.count else 1


async def _tail(
    args: argparse.Namespace, settings: KafkaSettings, out: TextIO, err: TextIO, pretty: bool
) -> int:
    stop = asyncio.Event()
    install_stop(stop)
    kafka = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        client_id="helmctl-tail",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.max_message_bytes + 65536,
    )
    await kafka.start()
    try:
        await _assign(kafka, settings, args.topics, args.from_beginning)
        start = "the beginning" if args.from_beginning else "now on"
        err.write(f"tailing {', '.join(args.topics)} from {start} (Ctrl+C to stop)\n")
        err.flush()
        return await _loop(kafka, settings, out, Shown(pretty, args.key, args.count), stop)
    finally:
        await kafka.stop()


async def _assign(
    kafka: AIOKafkaConsumer, settings: KafkaSettings, topics: list[str], from_start: bool
) -> None:
    """Take every partition of the topics and fix the start position before saying "ready"."""
    known = await kafka.topics()
    parts = []
    for base in topics:
        name = settings.topic_prefix + base
        if name not in known:
            raise TailError(f"no topic {name!r} on {settings.bootstrap}")
        parts += [TopicPartition(name, p) for p in sorted(kafka.partitions_for_topic(name) or [])]
    kafka.assign(parts)
    if from_start:
        await kafka.seek_to_beginning(*parts)
        return
    await kafka.seek_to_end(*parts)
    await _past_the_end(kafka, parts)


async def _past_the_end(kafka: AIOKafkaConsumer, parts: list[TopicPartition]) -> None:
    """Skip to the high watermark that fetches report.

    The embedded broker answers "latest offset" with the base of its last batch plus one, which
    can lie inside that batch; the fetch response's high watermark is right. What is skipped here
    was all published before tail says it is reading.
    """
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await kafka.getmany(*parts, timeout_ms=100)
        behind = [tp for tp in parts if (kafka.highwater(tp) or 0) > await kafka.position(tp)]
        if not behind and all(kafka.highwater(tp) is not None for tp in parts):
            return
    raise TailError("could not find the end of the topics within 30 s")


@dataclass
class Shown:
    """What to show and how many are left to show."""

    pretty: bool
    key: str | None
    count: int | None
    done: int = 0

    def wanted(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        return self.key is None or (record.key or b"").decode(errors="replace") == self.key

    @property
    def finished(self) -> bool:
        return self.count is not None and self.done >= self.count


async def _loop(
    kafka: AIOKafkaConsumer,
    settings: KafkaSettings,
    out: TextIO,
    shown: Shown,
    stop: asyncio.Event,
) -> int:
    while not stop.is_set() and not shown.finished:
        batch = await kafka.getmany(timeout_ms=200)
        records = sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp)
        for record in filter(shown.wanted, records):
            out.write(render(record, settings.topic_prefix, shown.pretty) + "\n")
            shown.done += 1
            if shown.finished:
                break
        out.flush()
    return shown.done


def render(record: ConsumerRecord[bytes, bytes], prefix: str, pretty: bool) -> str:
    """One line for one record: the event's JSON, or a readable summary on a terminal."""
    base = (
        record.topic[len(prefix) :] if prefix and record.topic.startswith(prefix) else record.topic
    )
    raw = record.value or b""
    try:
        event = codec.decode(base, raw)
    except codec.DecodeError as exc:
        text = raw.decode(errors="replace")
        if pretty:
            return f"{_clock(record.timestamp / 1000)}  {base}  NOT AN EVENT ({exc}): {text[:300]}"
        return json.dumps({"invalid": str(exc), "topic": base, "raw": text})
    if not pretty:
        return raw.decode()
    fields = event.model_dump(mode="json", exclude_defaults=True, exclude=HIDDEN)
    details = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
    return f"{_clock(event.ts)}  {base}  {type(event).__name__}  {details}"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return f"[{len(value)}]" if len(value) > 3 else ",".join(map(str, value))
    text = str(value)
    return repr(text) if " " in text else text
