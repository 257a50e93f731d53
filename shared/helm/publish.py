"""``helmctl publish``: put hand-made or recorded events on any Helm topic.

Events come from flags (one sub-command per kind of message, one flag per contract field, so the
flags always match ``contracts.py``) or from a JSON / JSONL file. Every event is validated against
its topic's contract before anything is sent: a failure names the line (or flag) and the field,
and nothing at all is sent. ``--raw`` sends a file's lines byte for byte, unvalidated, to exercise
the dead-letter path. Sending waits for the broker's acknowledgement of every event, and the
topics are created first if missing (never auto-created). Honours ``HELM_KAFKA_BOOTSTRAP`` and
``HELM_KAFKA_TOPIC_PREFIX``.
"""

from __future__ import annotations

import argparse
import asyncio
import typing
from collections.abc import Iterable
from typing import Any, TextIO

from pydantic import ValidationError

from helm import codec
from helm import contracts as c
from helm.eventfile import (
    TOPIC_OF_TYPE,
    Outgoing,
    PublishError,
    from_file,
    outgoing,
    raw_from_file,
)
from helm.settings import KafkaSettings

KINDS: dict[str, type[c.Message]] = {
    "run": c.RunCompleted,
    "heartbeat": c.InstanceHeartbeat,
    "drift": c.DriftDetected,
    "pause": c.PauseAgent,
    "resume": c.ResumeAgent,
    "constrain": c.ConstrainAgent,
    "stop": c.StopInstance,
    "anomaly": c.InjectAnomaly,
    "clear-anomaly": c.ClearAnomaly,
    "escalate": c.AgentEscalated,
    "incident": c.IncidentRecorded,
    "task": c.TaskRequested,
    "answer": c.TaskAnswered,
}
SKIPPED = {"type", "schema_version"}
OPERATOR = "operator:helmctl"  # the actor of commands sent from here, unless --actor says


# -- building events ---------------------------------------------------------------------------


def add_kind_parsers(publish: argparse.ArgumentParser) -> None:
    """One sub-command per kind, with a flag per contract field (``--agent`` for ``agent_id``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--count", type=int, default=1, help="send this many (fresh ids each)")
    common.add_argument("--topic", default=argparse.SUPPRESS, help="base topic (default: its own)")
    common.add_argument("--key", default=argparse.SUPPRESS, help="Kafka key (default: by contract)")
    _sending_options(common, argparse.SUPPRESS)
    kinds = publish.add_subparsers(dest="kind", metavar="KIND")
    for name, model in KINDS.items():
        where = "helm.tasks.<agent>" if model is c.TaskRequested else TOPIC_OF_TYPE[model.__name__]
        sub = kinds.add_parser(name, parents=[common], help=f"{model.__name__} on {where}")
        for field, info in model.model_fields.items():
            if field not in SKIPPED:
                sub.add_argument(*_flags(field, model.model_fields), dest=f"f_{field}", help=info.description,
                                 default=argparse.SUPPRESS, **_how(info.annotation))  # fmt: skip


def _flags(field: str, others: Iterable[str] = ()) -> list[str]:
    """``--output-tokens`` for ``output_tokens``; ``--agent`` too for ``agent_id``."""
    flag = "--" + field.replace("_", "-")
    short = field.removesuffix("_id")
    if short != field and field not in ("event_id", "run_id") and short not in others:
        return ["--" + short.replace("_", "-"), flag]
    return [flag]


def _how(annotation: Any) -> dict[str, Any]:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation is bool:
        return {"nargs": "?", "const": "true", "metavar": "BOOL"}
    if typing.get_origin(annotation) is list:
        return {"action": "append", "metavar": "VALUE"}
    if typing.get_origin(annotation) is typing.Literal:
        return {"choices": list(args)}
    kind = args[0] if args else annotation
    return {"metavar": {int: "N", float: "NUMBER"}.get(kind, "TEXT")}


def from_flags(args: argparse.Namespace) -> list[Outgoing]:
    """The events the flags describe, validated (errors name the flag)."""
    model = KINDS[args.kind]
    values = {k[2:]: v for k, v in vars(args).items() if k.startswith("f_")}
    if issubclass(model, c.ControlCommand):
        values.setdefault("actor", OPERATOR)
    events: list[c.Message] = []
    for _ in range(max(0, args.count)):
        try:
            events.append(model.model_validate(values))
        except ValidationError as exc:
            raise PublishError(_explain(exc, flags=True)) from None
    topic, key = getattr(args, "topic", None), getattr(args, "key", None)
    return [outgoing(e, topic, key) for e in events]


def _explain(exc: ValidationError, flags: bool = False) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        if flags and err["loc"]:
            where = _flags(str(err["loc"][0]))[0]
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


# -- sending -----------------------------------------------------------------------------------


class Progress:
    """``published 1200/5000 (24%)`` on stderr: redrawn on a terminal, every tenth otherwise."""

    def __init__(self, total: int, err: TextIO, shown: bool) -> None:
        self.total, self.err, self.shown = total, err, shown
        self.tty, self.step = err.isatty(), 0

    def update(self, done: int) -> None:
        if not self.shown:
            return
        line = f"published {done}/{self.total} ({100 * done // max(1, self.total)}%)"
        if self.tty:
            self.err.write("\r" + line + ("\n" if done == self.total else ""))
        elif done * 10 // max(1, self.total) > self.step or done == self.total:
            self.step = done * 10 // max(1, self.total)
            self.err.write(line + "\n")
        self.err.flush()


async def send(settings: KafkaSettings, events: list[Outgoing], progress: Progress) -> None:
    """Create missing topics, send every event, wait for every acknowledgement."""
    from aiokafka import AIOKafkaProducer

    from helm.bus import Bus

    await Bus(settings, "helmctl").ensure_topics(sorted({e.topic for e in events}))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id="helmctl",
        acks="all",
        linger_ms=max(5, settings.linger_ms),
        max_request_size=settings.max_message_bytes + 65536,
    )
    await producer.start()
    done = 0
    try:
        for chunk in _chunks(events, max(100, min(1000, len(events) // 20))):
            futures = [
                await producer.send(
                    settings.topic_prefix + e.topic, e.value, key=e.key.encode() if e.key else None
                )
                for e in chunk
            ]
            await asyncio.gather(*futures)
            done += len(chunk)
            progress.update(done)
    finally:
        await producer.stop()


def _chunks(items: list[Outgoing], size: int) -> Iterable[list[Outgoing]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def run(args: argparse.Namespace, settings: KafkaSettings, out: TextIO, err: TextIO) -> int:
    """``helmctl publish``: build or read, validate all, then send (or print, ``--dry-run``)."""
    topic, key = getattr(args, "topic", None), getattr(args, "key", None)
    if args.kind:
        events = from_flags(args)
    elif args.file and args.raw:
        events = raw_from_file(args.file, topic, key)
    elif args.file:
        events = from_file(args.file, topic, key)
    else:
        raise PublishError("say what to publish: a KIND with its flags, or --file")
    for number, event in enumerate(events, 1):
        if len(event.value) > settings.max_message_bytes:
            size = codec.too_large(len(event.value), settings.max_message_bytes)
            raise PublishError(f"event {number} ({event.topic}): {size}; nothing was sent")
    if getattr(args, "dry_run", None):
        out.writelines(e.value.decode(errors="replace") + "\n" for e in events)
        return 0
    progress = getattr(args, "progress", None)
    shown = progress if progress is not None else len(events) >= 1000
    asyncio.run(send(settings, events, Progress(len(events), err, shown)))
    topics = ", ".join(sorted({settings.topic_prefix + e.topic for e in events})) or "nothing"
    err.write(f"published {len(events)} event(s) to {topics}\n")
    return 0


def add_parser(sub: Any) -> None:
    """The ``publish`` sub-command of ``helmctl``."""
    publish = sub.add_parser(
        "publish",
        help="send events to a Helm topic, from flags or a JSON/JSONL file, validated first",
        description="Send events built from flags (helmctl publish run --agent classifier "
        "--output-tokens 5000) or read from a file (helmctl publish --file events.jsonl).",
    )
    publish.add_argument("--file", help="JSON lines, a JSON array or one object; - for stdin")
    publish.add_argument("--topic", help="base topic, e.g. helm.telemetry (default: by type)")
    publish.add_argument("--key", help="Kafka key for every event (default: by contract)")
    publish.add_argument("--raw", action="store_true", help="send the file's lines unchecked")
    _sending_options(publish, None)
    add_kind_parsers(publish)


def _sending_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", default=default, help="print the events, send nothing"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="progress on stderr (default: for 1000 events or more)",
    )
