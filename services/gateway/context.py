"""What every route needs, built once per gateway by ``build_app`` and shared by reference."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import BaseModel

from helix.budgets import TokenBudgetManager
from helix.clock import Clock
from helm.bus import Bus
from helm.ops import HealthProbe
from helm.store import Store
from services.gateway.auth import Guard
from services.gateway.chat import ReplyWaiter, TokenBucket
from services.gateway.errors import ApiError
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings
from services.gateway.snapshot import Snapshot


@dataclass
class Gateway:
    settings: GatewaySettings
    bus: Bus
    store: Store
    budgets: TokenBudgetManager
    metrics: GatewayMetrics
    guard: Guard
    health: HealthProbe
    clock: Clock
    waiter: ReplyWaiter = field(default_factory=ReplyWaiter)
    limiter: TokenBucket = field(default_factory=lambda: TokenBucket(30.0, 5))
    _topics: set[str] = field(default_factory=set)
    snapshot: Snapshot = field(init=False)

    def __post_init__(self) -> None:
        async def build() -> bytes:
            from services.gateway import queries

            return (await queries.state(self)).model_dump_json().encode()

        self.snapshot = Snapshot(build, self.settings.state_cache_s)

    async def ensure_topic(self, base: str) -> None:
        """Create a topic once per process before the first publish to it."""
        if base not in self._topics:
            await self.bus.ensure_topics([base])
            self._topics.add(base)

    async def publish(self, base: str, message: BaseModel, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's ack, or 503 when Kafka does not answer in time."""
        try:
            await asyncio.wait_for(self.bus.publish(base, message), timeout_s)
        except TimeoutError:
            raise ApiError(
                503, f"Kafka did not acknowledge the command within {timeout_s:.0f} s"
            ) from None
