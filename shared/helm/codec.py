"""Bytes to contract models and back; the only place JSON meets the wire.

``decode`` raises ``DecodeError`` with a reason a person can read; the bus sends such messages to
the dead-letter topic. Keys follow DESIGN.md: the field each topic is keyed by. Sizes are bounded
by ``HELM_KAFKA_MAX_MESSAGE_BYTES`` both ways: ``check_size`` refuses to send a larger message,
``decode`` refuses to read one, and ``dead_letter`` keeps a letter under it by truncating.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from helm import contracts as c


class DecodeError(ValueError):
    """A message that is not JSON or does not satisfy its topic's contract."""


class MessageTooLarge(ValueError):
    """A message above the configured maximum size, refused before it is sent."""


LIMIT_SETTING = "HELM_KAFKA_MAX_MESSAGE_BYTES"
KEY_KEPT = 1024  # bytes of a dead-lettered record's key kept in the letter


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


def too_large(size: int, limit: int) -> str:
    return f"message too large: {size:,} bytes, above the limit of {limit:,} ({LIMIT_SETTING})"


def check_size(base_topic: str, value: bytes | None, limit: int) -> None:
    """Raise ``MessageTooLarge`` for a value above ``limit`` bytes."""
    if value is not None and len(value) > limit:
        raise MessageTooLarge(f"{base_topic}: {too_large(len(value), limit)}")


def decode(base_topic: str, raw: bytes | None, limit: int | None = None) -> Any:
    """Parse and validate ``raw`` against the contract of ``base_topic`` (no prefix), refusing
    a message above ``limit`` bytes."""
    if raw is None:
        raise DecodeError("empty message (no value)")
    if limit is not None and len(raw) > limit:
        raise DecodeError(too_large(len(raw), limit))
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


def dead_letter(
    source: tuple[str, int, int],
    consumer: str,
    reason: str,
    value: bytes | None,
    key: bytes | None,
    limit: int,
) -> c.DeadLettered:
    """The letter for a refused record (base topic, partition, offset), kept under ``limit``:
    a payload above half of it is truncated, and the reason says so."""
    payload, keep, note = value or b"", limit // 2, ""
    if len(payload) > keep:
        payload, note = payload[:keep], f" [payload truncated to its first {keep:,} bytes]"
    return c.DeadLettered(
        source_topic=source[0],
        partition=source[1],
        offset=source[2],
        consumer=consumer,
        reason=reason[:2000] + note,
        payload_b64=base64.b64encode(payload).decode(),
        key_b64=base64.b64encode(key[:KEY_KEPT]).decode() if key else None,
    )


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
