"""The chat relay: publish a ``TaskRequested`` and wait for the ``TaskAnswered`` with its id.

One consumer of ``helm.replies`` per gateway process (no group, from the latest offset) resolves
a dict of futures keyed by request id; an answer nobody waits for (another gateway's, or one
that arrived after its timeout) is ignored. A token bucket per client bounds the query rate.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable

from helm import contracts as c
from helm.bus import Bus


class ReplyWaiter:
    """Futures for answers in flight, resolved by the replies consumer."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[c.TaskAnswered]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def on_reply(self, answer: c.TaskAnswered) -> None:
        """Handler of ``helm.replies``."""
        future = self._pending.get(answer.request_id)
        if future is not None and not future.done():
            future.set_result(answer)

    async def ask(
        self, bus: Bus, agent_id: str, query: str, timeout_s: float
    ) -> tuple[str, c.TaskAnswered | None]:
        """Send the query; the request id and the answer, or None after ``timeout_s``."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[c.TaskAnswered] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            task = c.TaskRequested(agent_id=agent_id, request_id=request_id, input=query)
            await asyncio.wait_for(bus.publish(c.tasks_topic(agent_id), task), timeout_s)
            return request_id, await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return request_id, None
        finally:
            self._pending.pop(request_id, None)


class TokenBucket:
    """Per-key token buckets: ``rate_per_min`` refill, ``burst`` capacity."""

    def __init__(
        self,
        rate_per_min: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = rate_per_min / 60.0
        self.burst, self.clock, self.max_keys = float(burst), clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 when allowed (one token taken), else seconds until a token is available."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._remember(key, (tokens - 1.0, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, value: tuple[float, float]) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            # Forget the oldest bucket: a full bucket is what a forgotten client gets anyway.
            self._buckets.pop(next(iter(self._buckets)))
        self._buckets[key] = value


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
