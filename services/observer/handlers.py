"""The observer's handler: telemetry in; drift, metrics and a checkpoint out.

Exactly-once over at-least-once delivery: each batch's window updates and the partition position
after it are written to Redis in one transaction, and a restarted or rebalanced observer resumes
each partition from that stored position, so no run is counted twice or missed. Drift events are
published before the checkpoint with ids derived from the run's event id and the rule, so a
replay republishes the same ids and the governor's dedupe makes them no-ops.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from helix import LLMResourceTracker
from helm import contracts as c
from helm.bus import Bus, Position
from helm.config import DriftConfig
from helm.store import Store
from services.observer.metrics import ObserverMetrics
from services.observer.rules import AgentWindow, Finding, evaluate

log = logging.getLogger(__name__)
DRIFT_NS = uuid.UUID("6c1f6c1e-8a55-4b7b-9a8f-1d0e8f1b2a01")


class Observer:
    def __init__(self, bus: Bus, store: Store, cfg: DriftConfig, metrics: ObserverMetrics) -> None:
        self.bus, self.store, self.cfg, self.metrics = bus, store, cfg, metrics
        self.windows: dict[str, AgentWindow] = {}
        self.trackers: dict[str, LLMResourceTracker] = {}

    def _window_key(self, agent_id: str) -> str:
        return self.store.key("observer", "window", agent_id)

    @property
    def _offsets_key(self) -> str:
        return self.store.key("observer", "offsets")

    async def window(self, agent_id: str) -> AgentWindow:
        w = self.windows.get(agent_id)
        if w is None:
            raw = await self.store.redis.get(self._window_key(agent_id))
            w = (
                AgentWindow.from_json(json.loads(raw), self.cfg)
                if raw
                else AgentWindow.new(self.cfg)
            )
            self.windows[agent_id] = w
            self.metrics.agents.set(len(self.windows))
        return w

    async def resume_from(self, topic: str, partition: int) -> int | None:
        """Where a newly assigned partition starts: after the last checkpointed batch."""
        self.windows.clear()  # another observer may have moved these agents on: reload
        raw = await self.store.redis.hget(self._offsets_key, f"{topic}:{partition}")
        return int(raw) if raw is not None else None

    async def handle(self, runs: list[c.RunCompleted], position: Position) -> None:
        touched: dict[str, c.RunCompleted] = {}
        drifts: list[c.DriftDetected] = []
        for run in runs:
            w = await self.window(run.agent_id)
            drifts += [self._drift(run, f) for f in evaluate(w, run, self.cfg)]
            await self._track(run)
            touched[run.agent_id] = run
        for drift in drifts:
            await self.bus.publish(c.DRIFT, drift)
            self.metrics.drifts.labels(drift.agent_id, drift.rule).inc()
            log.info(
                "drift %s on %s: %s (baseline %s)",
                drift.rule,
                drift.agent_id,
                drift.observed,
                drift.baseline,
            )
        await self._checkpoint(touched, position)
        for agent_id, last in touched.items():
            await self.store.set_metrics(
                agent_id, await self._metrics(agent_id, last), _point(last)
            )
        for run in runs:
            self.metrics.runs.labels(run.agent_id, run.outcome).inc()

    def _drift(self, run: c.RunCompleted, f: Finding) -> c.DriftDetected:
        return c.DriftDetected(
            event_id=uuid.uuid5(DRIFT_NS, f"{run.event_id}:{f.rule}").hex,
            agent_id=run.agent_id,
            service_id=run.service_id,
            rule=f.rule,
            metric=f.metric,
            observed=f.observed,
            baseline=f.baseline,
            threshold=f.threshold,
            window=f.window,
            evidence_run_ids=f.evidence,
            cause_event_id=run.event_id,
        )

    async def _track(self, run: c.RunCompleted) -> None:
        tracker = self.trackers.get(run.agent_id)
        if tracker is None:
            tracker = self.trackers[run.agent_id] = LLMResourceTracker(
                run.agent_id, run.model, window_size=300
            )
        await tracker.record_request(
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            latency_ms=run.latency_ms,
            ttft_ms=run.ttft_ms or 0.0,
            cost=run.cost,
            error=None if run.outcome == "ok" else run.outcome,
        )

    async def _checkpoint(self, touched: dict[str, c.RunCompleted], position: Position) -> None:
        topic, partition, offset = position
        pipe = self.store.redis.pipeline(transaction=True)
        for agent_id in touched:
            pipe.set(self._window_key(agent_id), json.dumps(self.windows[agent_id].to_json()))
        pipe.hset(self._offsets_key, f"{topic}:{partition}", offset)
        await pipe.execute()

    async def _metrics(self, agent_id: str, last: c.RunCompleted) -> dict[str, Any]:
        w = self.windows[agent_id]
        window = dict(await self.trackers[agent_id].get_metrics())
        return {
            **{k: v for k, v in window.items() if isinstance(v, int | float)},
            "runs": w.runs,
            "drifts": w.drifts,
            "baseline_tokens": w.median(),
            "tokens_per_run": last.total_tokens,
            "confidence": last.confidence,
            "retries": last.retries,
            "batch_size": last.batch_size,
            "provider": last.provider,
            "model": last.model,
            "last_run_ts": last.ts,
            "last_outcome": last.outcome,
        }


def _point(run: c.RunCompleted) -> dict[str, Any]:
    return {
        "ts": run.ts,
        "tokens": run.total_tokens,
        "confidence": run.confidence,
        "latency_ms": round(run.latency_ms, 1),
        "outcome": run.outcome,
        "probe": run.probe,
    }
