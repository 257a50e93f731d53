"""Autoscaling: each agent's Helix ``ScalingPolicy`` fed with what its instances are doing.

Signals, per agent: task backlog (consumer lag of ``worker.<agent>``), CPU per ready instance
(from heartbeats, measured by each worker over its heartbeat interval, so start-up is not
counted), memory per instance as a percent of its limit (Helix's RSS samples), and the
observer's tokens per second and p95 latency (ignored once its last run is ``STALE_S`` old).

Guarantees: a paused agent is not scaled (its backlog waits by design); every change of an
instance count is one ``scaled`` incident naming the metric and value behind it; the count
stays within the policy's [min, max] (and Helix's ``max_workers``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from helix import InstanceStatus, Scaler, ScalingDecision, ScalingMetrics
from helm import contracts as c
from helm.store import Store
from services.runtime.backlog import Backlog
from services.runtime.desired import WorkerSpec
from services.runtime.fleet import Fleet
from services.runtime.handlers import HeartbeatBook
from services.runtime.incidents import scaled
from services.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

STALE_S = 60.0


def observed(metrics: dict[str, Any], now: float) -> tuple[float | None, float | None]:
    """Tokens per second and p95 latency from the observer's window, unless it is stale
    (an agent with no runs for a minute has no throughput and no latency to speak of)."""
    last = metrics.get("last_run_ts")
    if not isinstance(last, int | float) or now - last > STALE_S:
        return (0.0 if metrics else None), None
    tps, p95 = metrics.get("tokens_per_second"), metrics.get("latency_p95_ms")
    return (
        float(tps) if isinstance(tps, int | float) else None,
        float(p95) if isinstance(p95, int | float) and p95 > 0 else None,
    )


def load(
    instances: list[InstanceStatus], book: HeartbeatBook, limit_mb: float | None
) -> tuple[float | None, float | None]:
    """Average CPU % of the ready instances and memory % of the limit of the measured ones."""
    cpus = [hb.cpu_percent for i in instances if i.ready and (hb := book.fresh(i)) is not None]
    rss = [i.rss_mb for i in instances if i.rss_mb is not None]
    cpu = sum(cpus) / len(cpus) if cpus else None
    memory = sum(rss) / len(rss) / limit_mb * 100 if rss and limit_mb else None
    return cpu, memory


class Autoscaler:
    def __init__(
        self,
        fleet: Fleet,
        backlog: Backlog,
        store: Store,
        metrics: RuntimeMetrics,
        report: Callable[[c.IncidentRecorded], Awaitable[None]],
        scaler: Scaler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet, self.backlog, self.store, self.metrics = fleet, backlog, store, metrics
        self.report, self.scaler, self.clock = report, scaler or Scaler(), clock

    async def adopt(self, spec: WorkerSpec) -> None:
        """Scale ``spec``'s agent by its policy from now on (a changed spec starts afresh)."""
        await self.scaler.register_policy(spec.agent_id, spec.policy())

    async def tick(self) -> None:
        """One decision per agent; one agent's failure does not stop the others'."""
        for agent_id in list(self.fleet.specs):
            try:
                await self.evaluate(agent_id)
            except Exception:
                log.exception("autoscaling %s failed", agent_id)

    async def measure(self, agent_id: str, instances: list[InstanceStatus]) -> ScalingMetrics:
        backlog = await self.backlog.of(agent_id)
        if backlog is not None:
            self.metrics.backlog.labels(agent_id).set(backlog)
        tps, p95 = observed(await self.store.get_metrics(agent_id), self.clock())
        cpu, memory = load(instances, self.fleet.book, self.fleet.specs[agent_id].memory_limit_mb)
        return ScalingMetrics(
            cpu_percent=cpu,
            memory_percent=memory,
            queue_depth=None if backlog is None else float(backlog),
            tokens_per_second=tps,
            p95_latency_ms=p95,
        )

    async def evaluate(self, agent_id: str) -> ScalingDecision | None:
        """Decide, act, and report; None when the agent is paused (nothing is decided)."""
        if (await self.store.get_control(agent_id)).paused:
            return None
        status = await self.fleet.status(agent_id)
        metrics = await self.measure(agent_id, status.instances)
        decision = await self.scaler.decide(agent_id, metrics, status.desired_instances)
        if decision.desired == decision.current:
            log.debug("%s stays at %d: %s", agent_id, decision.current, decision.reason)
            return decision
        reached = await self.fleet.scale(agent_id, decision.desired, decision.reason)
        if reached != decision.current:
            log.info("scaled %s %d -> %d: %s", agent_id, decision.current, reached, decision.reason)
            self.metrics.scaled.labels(agent_id, decision.direction).inc()
            await self.report(scaled(decision, reached))
        return decision
