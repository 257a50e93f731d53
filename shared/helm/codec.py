"""Bytes to contract models and back; the only place JSON meets the wire.

``decode`` raises ``DecodeError`` with a reason a person can read; the bus sends such messages to
the dead-letter topic. Keys follow DESIGN.md: the field each topic is keyed by.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from helm import contracts as c


class DecodeError(ValueError):
    """A message that is not JSON or does not satisfy its topic's contract."""


@cache
def _adapter(base_topic: str) -> TypeAdapter[Any]:
    if base_topic.startswith(c.TASKS_PREFIX):
        return TypeAdapter(c.TaskRequested)
    try:
        return TypeAdapter(c.TOPIC_MESSAGES[base_topic])
    except KeyError:
        raise DecodeError(f"no contract for topic {base_topic!r}") from None


def encode(message: BaseModel) -> bytes:
    """Serialise a contract model to compact JSON bytes."""
    return message.model_dump_json().encode()


def decode(base_topic: str, raw: bytes | None) -> Any:
    """Parse and validate ``raw`` against the contract of ``base_topic`` (no prefix)."""
    if raw is None:
        raise DecodeError("empty message (no value)")
    try:
        return _adapter(base_topic).validate_json(raw)
    except ValidationError as exc:
        raise DecodeError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        problems.append(f"{where}: {err['msg']}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(problems) + more


def key_for(message: BaseModel) -> str:
    """The Kafka key DESIGN.md fixes for each message type."""
    if isinstance(message, c.AgentEscalated | c.ServiceEscalated):
        return message.service_id
    if isinstance(message, c.IncidentRecorded):
        return message.scope_id
    if isinstance(message, c.TaskRequested):
        return message.task_id
    if isinstance(message, c.TaskAnswered):
        return message.request_id
    if isinstance(message, c.DeadLettered):
        return message.source_topic
    agent = getattr(message, "agent_id", None)
    return str(agent) if agent else ""
