"""Mutual exclusion between governor processes, in Redis (``SET NX`` with an expiry).

Several governors may share one consumer group; Kafka gives each one some partitions of each
topic, so the drift of an agent may reach one process while its runs reach another. Two tools
keep them from deciding twice or on stale state:

- ``Mutexes.hold(name)``: a short mutex around read-decide-write of one agent's (or service's)
  state, taken in-process first, then in Redis; it expires on its own if its holder dies.
- ``Lease``: leadership of the periodic work (due recoveries, budget checks). One process holds
  it and renews it every round; when it stops renewing, another takes over after ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class Mutexes:
    """Named mutexes shared by every process on the same Redis and prefix."""

    def __init__(
        self, redis: Any, key: Callable[[str], str], ttl_s: float = 10.0, wait_s: float = 15.0
    ) -> None:
        self.redis, self.key, self.ttl_ms, self.wait_s = redis, key, int(ttl_s * 1000), wait_s
        # In-process locks with how many tasks hold or wait for each; a name nobody uses is
        # dropped, so the table follows the decisions in flight, not every agent ever seen.
        self.local: dict[str, tuple[asyncio.Lock, int]] = {}
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold ``name``; raises ``TimeoutError`` (retried by the bus) if it stays busy."""
        lock, users = self.local.get(name) or (asyncio.Lock(), 0)
        self.local[name] = (lock, users + 1)
        try:
            async with lock:
                key, token = self.key(name), uuid.uuid4().hex
                deadline, delay = time.monotonic() + self.wait_s, 0.002
                while not await self.redis.set(key, token, nx=True, px=self.ttl_ms):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"governor lock {name!r} stayed busy")
                    await asyncio.sleep(delay)
                    delay = min(0.1, delay * 2)
                try:
                    yield
                finally:
                    await self._release(keys=[key], args=[token])
        finally:
            lock, users = self.local[name]
            if users > 1:
                self.local[name] = (lock, users - 1)
            else:
                del self.local[name]


class Lease:
    """Leadership of one job: ``renew()`` is True while this process leads."""

    def __init__(self, redis: Any, key: str, ttl_s: float) -> None:
        self.key, self.ttl_ms, self.token = key, int(ttl_s * 1000), uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def renew(self) -> bool:
        """Take the lease if it is free, extend it if it is ours; False if another holds it."""
        return bool(await self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    async def release(self) -> None:
        """Give the lease up (only if it is ours), so another process takes over at once."""
        await self._release(keys=[self.key], args=[self.token])
