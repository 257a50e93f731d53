"""Runtime events: what happened to which instance, for callbacks and async streams.

Subscribers of ``events()`` each get a bounded queue; a subscriber that falls behind loses its
oldest events (logged), never blocks the runtime.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from helix.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    INSTANCE_STARTED = "instance_started"
    INSTANCE_EXITED = "instance_exited"
    INSTANCE_RESTARTED = "instance_restarted"
    INSTANCE_OOM_RESTARTED = "instance_oom_restarted"
    INSTANCE_STOPPED = "instance_stopped"
    HEALTH_CHANGED = "health_changed"
    READINESS_CHANGED = "readiness_changed"
    SCALED = "scaled"


@dataclass(frozen=True)
class RuntimeEvent:
    kind: EventKind
    agent_id: str
    instance_id: str | None = None
    reason: str = ""
    at: float = 0.0  # wall time
    detail: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[RuntimeEvent], Awaitable[None] | None]


class EventBus:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, queue_size: int = 1000) -> None:
        self._clock = clock
        self._callbacks: list[EventCallback] = []
        self._queues: list[asyncio.Queue[RuntimeEvent]] = []
        self._queue_size = queue_size

    def subscribe(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    async def emit(
        self,
        kind: EventKind,
        agent_id: str,
        instance_id: str | None = None,
        reason: str = "",
        **detail: Any,
    ) -> RuntimeEvent:
        event = RuntimeEvent(kind, agent_id, instance_id, reason, self._clock.time(), detail)
        log.info("%s %s %s %s", kind, agent_id, instance_id or "", reason)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                log.warning("event subscriber lagging; dropped its oldest event")
            queue.put_nowait(event)
        for callback in self._callbacks:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a faulty subscriber must not break supervision
                log.exception("event callback failed")
        return event

    async def stream(self) -> AsyncIterator[RuntimeEvent]:
        queue: asyncio.Queue[RuntimeEvent] = asyncio.Queue(self._queue_size)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
