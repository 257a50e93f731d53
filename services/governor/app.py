"""The governor service: agent, service and organisation governors, and the incident log.

Consumes drift (to pause), telemetry (to judge recoveries), operator commands on the control
topic (to record them as decisions with their actor, and the kill switch) and escalations.
Several governor processes may share the consumer groups: the periodic work (starting due
recovery attempts every ``tick_s``, checking token budgets every ``budget_check_s``) is done by
the one holding a lease in Redis, and every process refreshes its caches every ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterator
from typing import Any

from helix import TokenBudgetManager
from helix.clock import SYSTEM_CLOCK, Clock
from helm import contracts as c
from helm.base import BaseApp
from helm.budgets import budget_manager
from helm.bus import TRANSIENT
from helm.config import load_config
from helm.runner import sleep_or_stop
from services.governor.handlers import Governor
from services.governor.locks import Lease
from services.governor.metrics import GovernorMetrics
from services.governor.settings import GovernorSettings

log = logging.getLogger(__name__)
STATES_EVERY = 5  # refreshes between two readings of every agent's state (for the gauge)


class GovernorApp(BaseApp):
    name = "governor"

    def __init__(
        self,
        settings: GovernorSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        budgets: TokenBudgetManager | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, ops_port=settings.ops_port, **kwargs)
        self.gs = settings
        policy = load_config(settings.config_file).governor
        self.governor = Governor(
            self.bus,
            self.store,
            policy,
            GovernorMetrics(self.registry),
            clock.time,
            budgets or budget_manager(self.store, clock),
        )
        self.lease = Lease(self.store.redis, self.store.key("governor", "leader"), settings.lease_s)

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        g, group = self.governor, self.gs.group
        return [
            self.bus.consumer([c.DRIFT], f"{group}.drift", g.on_drift).run(stop),
            self.bus.consumer([c.TELEMETRY], f"{group}.telemetry", g.on_run).run(stop),
            self.bus.consumer([c.CONTROL], f"{group}.control", g.on_control).run(stop),
            self.bus.consumer([c.ESCALATIONS], f"{group}.escalations", g.on_escalation).run(stop),
            self.refresher(stop),
            self.leader(stop),
        ]

    async def refresher(self, stop: asyncio.Event) -> None:
        rounds = 0
        while not stop.is_set():
            with _survive("refresh"):
                await self.governor.refresh()
                if rounds % STATES_EVERY == 0:
                    await self.governor.agents.refresh_states()
            rounds += 1
            await sleep_or_stop(stop, self.gs.refresh_s)

    async def leader(self, stop: asyncio.Event) -> None:
        """While this process holds the lease: due recoveries and budget checks."""
        next_check = 0.0
        try:
            while not stop.is_set():
                with _survive("leader"):
                    await self._lead(time.monotonic() >= next_check)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.gs.budget_check_s
                await sleep_or_stop(stop, self.gs.tick_s)
        finally:
            with contextlib.suppress(Exception):  # unreleased, it lapses after lease_s
                await self.lease.release()

    async def _lead(self, check_budgets: bool) -> None:
        if not await self.lease.renew():
            self.governor.agents.metrics.budget_utilization.clear()
            return
        await self.governor.tick()
        if check_budgets:
            await self.governor.check_budgets()


@contextlib.contextmanager
def _survive(what: str) -> Iterator[None]:
    """Ride out a Redis or Kafka blip (the next round retries); anything else ends the loop."""
    try:
        yield
    except TRANSIENT as exc:
        log.warning("governor %s round failed: %r; retrying next round", what, exc)


def build_app(settings: GovernorSettings, **kwargs: Any) -> GovernorApp:
    """The governor; tests may pass ``bus``, ``store``, ``registry``, ``clock`` and ``budgets``."""
    return GovernorApp(settings, **kwargs)
