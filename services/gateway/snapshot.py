"""``/state`` as bytes, built at most once per ``ttl_s`` however many clients ask.

Building the whole picture costs two Redis pipelines and a validation per agent; with a thousand
agents and a dashboard per operator that adds up. Concurrent requests share one build in flight
(single flight), and a finished build serves for ``ttl_s`` (1 s by default: the live view comes
over the WebSocket; ``/state`` is for polling and scripts). A failed build is not cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Snapshot:
    def __init__(self, build: Callable[[], Awaitable[bytes]], ttl_s: float) -> None:
        self.build, self.ttl_s = build, ttl_s
        self._body: bytes | None = None
        self._at = 0.0
        self._inflight: asyncio.Future[bytes] | None = None

    async def get(self) -> bytes:
        if self._body is not None and time.monotonic() - self._at < self.ttl_s:
            return self._body
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> bytes:
        try:
            body = await self.build()
            self._body, self._at = body, time.monotonic()
            return body
        finally:
            self._inflight = None
