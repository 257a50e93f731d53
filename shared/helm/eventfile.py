"""Events for Helm's topics from files, and the events' topics and keys.

A file is JSON lines, a JSON array or one JSON object. ``from_file`` validates every event against
its topic's contract (given, or found from the event's ``type``) and fails on the first bad one,
naming the line and the field; ``raw_from_file`` takes each line's bytes as they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from helm import codec
from helm import contracts as c

TOPIC_OF_TYPE = {
    "RunCompleted": c.TELEMETRY,
    "InstanceHeartbeat": c.HEARTBEATS,
    "DriftDetected": c.DRIFT,
    "AgentEscalated": c.ESCALATIONS,
    "ServiceEscalated": c.ESCALATIONS,
    "IncidentRecorded": c.INCIDENTS,
    "TaskAnswered": c.REPLIES,
    "DeadLettered": c.DEADLETTER,
}
TOPIC_OF_TYPE |= {t: c.CONTROL for t in ("PauseAgent", "ResumeAgent", "ConstrainAgent")}
TOPIC_OF_TYPE |= {t: c.CONTROL for t in ("StopInstance", "InjectAnomaly", "ClearAnomaly")}


class PublishError(Exception):
    """Bad input: the message says where (line or flag) and what; nothing was sent."""


@dataclass(frozen=True)
class Outgoing:
    topic: str  # base topic name, without the prefix
    key: str | None
    value: bytes


def topic_of(event: BaseModel) -> str:
    if isinstance(event, c.TaskRequested):
        return c.tasks_topic(event.agent_id)
    return TOPIC_OF_TYPE[str(getattr(event, "type", ""))]


def outgoing(event: BaseModel, topic: str | None, key: str | None) -> Outgoing:
    return Outgoing(topic or topic_of(event), key or codec.key_for(event), codec.encode(event))


# -- files -------------------------------------------------------------------------------------


def _lines(path: str) -> Iterator[tuple[str, str]]:
    """(where, text) of each event in a JSONL file, a JSON array or one JSON object."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    name = "stdin" if path == "-" else Path(path).name
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PublishError(f"{name}: not a JSON array: {exc}") from None
        yield from ((f"{name}: item {i}", json.dumps(x)) for i, x in enumerate(items, 1))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield f"{name}:{number}", line


def from_file(path: str, topic: str | None, key: str | None) -> list[Outgoing]:
    """Every event of the file, each validated against its topic's contract, or an error.

    What is sent is the event as written plus the defaults its contract filled in (an
    ``event_id`` above all, so a redelivered copy stays the same event); fields the contract does
    not know are kept, as a newer producer would send them.
    """
    out = []
    for where, line in _lines(path):
        try:
            data = json.loads(line)
            base = topic or _type_topic(data)
            event = codec.decode(base, line.encode())
        except json.JSONDecodeError as exc:
            raise PublishError(f"{where}: not JSON: {exc}") from None
        except (codec.DecodeError, PublishError) as exc:
            raise PublishError(f"{where}: {exc}") from None
        value = json.dumps({**data, **event.model_dump(mode="json")}, separators=(",", ":"))
        out.append(Outgoing(base, key or codec.key_for(event), value.encode()))
    return out


def _type_topic(data: Any) -> str:
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "TaskRequested" and isinstance(data.get("agent_id"), str):
        return c.tasks_topic(data["agent_id"])
    if kind not in TOPIC_OF_TYPE:
        raise PublishError(f"no topic: give --topic, or a known 'type' field (got {kind!r})")
    return TOPIC_OF_TYPE[kind]


def raw_from_file(path: str, topic: str | None, key: str | None) -> list[Outgoing]:
    """Each non-blank line's bytes as they are, for ``topic``: nothing is checked."""
    if not topic:
        raise PublishError("--raw needs --topic")
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return [Outgoing(topic, key, line) for line in data.splitlines() if line.strip()]
