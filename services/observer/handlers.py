"""The observer's handler: telemetry in; drift, metrics and a checkpoint out.

Exactly once over at-least-once delivery:
- each partition's window updates and the position after them are stored together, in one
  fenced, atomic step (``checkpoint``); ``flush`` does it for every batch handled since the last
  one, a few times a second (a partition's first batch at once, so every partition handled has a
  stored position), and an observer taking a partition resumes it from that stored position. A
  crash loses only work not yet flushed, which is redone from the stored position: no run is
  counted twice or missed, across restarts, kills and rebalances;
- a snapshot never pairs windows with the wrong position: a batch is evaluated, its drifts
  published and its position recorded under one lock, and a batch in flight while its partition
  is re-claimed is dropped (the consumer is seeked back and gets it again);
- drift events are published before their batch can be checkpointed, with ids derived from the
  run's event id and the rule: a batch redone after a crash republishes the same ids, and the
  governor's dedupe makes them no-ops.
Dashboard figures (metrics, chart points) and the run counters are written by ``flush`` too, at
most once per agent per flush: a crash loses a point, never doubles one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from helm import contracts as c
from helm.bus import TRANSIENT, Bus, Position
from helm.config import DriftConfig
from helm.store import Store
from services.observer.checkpoint import Checkpoints
from services.observer.figures import figures, point
from services.observer.metrics import ObserverMetrics
from services.observer.policy import Policies, Policy
from services.observer.rules import drift_event, evaluate, new_window
from services.observer.stats import AgentStats
from services.observer.window import AgentWindow

log = logging.getLogger(__name__)
FIGURES_PER_CALL = 500  # agents per Redis call, so ten thousand agents make no giant command


@dataclass(slots=True)
class Tracked:
    """One agent in memory: its policy, its window (None: reload from the checkpoint), its stats."""

    policy: Policy
    window: AgentWindow | None
    stats: AgentStats
    seen: float = 0.0  # monotonic time of its last batch


@dataclass(slots=True)
class Pending:
    """A partition's work handled but not yet checkpointed."""

    position: Position
    agents: set[str] = field(default_factory=set)


class Observer:
    def __init__(self, bus: Bus, store: Store, cfg: DriftConfig, metrics: ObserverMetrics) -> None:
        self.bus, self.store, self.metrics = bus, store, metrics
        self.policies = Policies(cfg)
        self.checkpoints = Checkpoints(store)
        self.agents: dict[str, Tracked] = {}
        self.pending: dict[str, Pending] = {}  # partition field -> work since its checkpoint
        self.anchored: set[str] = set()  # partitions with a stored position
        self.dirty: dict[str, c.RunCompleted] = {}  # agents whose figures changed: last run
        self.counts: Counter[tuple[str, str]] = Counter()  # runs by agent and outcome, unreported
        self.handled: dict[str, int] = {}  # partition field -> next offset after what was applied
        self.outbox: list[c.DriftDetected] = []  # drifts found but not yet acknowledged
        self.lock = asyncio.Lock()  # held from applying a batch to recording it
        self.flushing = asyncio.Lock()  # held by a checkpoint flush, and by a claim
        self.generation = 0  # bumped when partitions are (re-)claimed

    async def resume_from(self, topic: str, partition: int) -> int | None:
        """Where a newly assigned partition starts: after the last checkpointed batch.

        Retried until Redis answers: a listener that failed would leave the partition at the
        group's committed offset, which may be past the checkpoint.
        """
        attempt = 0
        while True:
            try:
                return await self._claim(topic, partition)
            except TRANSIENT as exc:
                attempt += 1
                log.warning("cannot claim %s[%s] (%r); retrying", topic, partition, exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))

    async def _claim(self, topic: str, partition: int) -> int | None:
        async with self.flushing:  # no checkpoint lands between this flush and the claim
            await self._flush_checkpoints()  # what was handled is stored while still ours
            async with self.lock:
                self.generation += 1
                self.pending.clear()  # anything handled since is redone from the stored position
                self.handled.clear()
                self.outbox.clear()  # redoing those batches finds the same drifts again
                for tracked in self.agents.values():  # another observer may have moved them on
                    tracked.window = None
            offset = await self.checkpoints.claim(topic, partition)
        (self.anchored.add if offset is not None else self.anchored.discard)(f"{topic}:{partition}")
        return offset

    async def handle(self, runs: list[c.RunCompleted], position: Position) -> None:
        """Apply a batch once, publish its drifts, record it for the next checkpoint.

        The bus retries a batch whose handler raised; a retried batch is not applied again, only
        what it had left undone (publishing its drifts, anchoring its partition) is retried.
        """
        generation, part = self.generation, f"{position[0]}:{position[1]}"
        fresh = position[2] > self.handled.get(part, -1)
        batch = await self._tracked(runs) if fresh else {}
        async with self.lock:
            if generation != self.generation:
                return  # its partition was re-claimed meanwhile: it will be delivered again
            if fresh:
                self.agents.update(batch)  # back in, if forgotten while its windows loaded
                self.outbox += self._evaluate(runs, batch)
                self.handled[part] = position[2]
                self.pending.setdefault(part, Pending(position)).agents.update(batch)
                self.pending[part].position = position
            drifts, self.outbox = self.outbox, []
            try:
                if drifts:
                    await self.bus.publish_many(c.DRIFT, drifts)
            except BaseException:
                self.outbox = drifts + self.outbox  # never checkpointed before they are sent
                raise
        self._report(drifts)
        if part not in self.anchored:
            await self.flush_checkpoints()

    def _evaluate(
        self, runs: list[c.RunCompleted], batch: dict[str, Tracked]
    ) -> list[c.DriftDetected]:
        drifts: list[c.DriftDetected] = []
        dirty, counts = self.dirty, self.counts
        for run in runs:
            agent_id = run.agent_id
            tracked = batch[agent_id]
            window = cast(AgentWindow, tracked.window)  # loaded by _tracked
            for finding in evaluate(window, run, tracked.policy):
                drifts.append(drift_event(run, finding))
            tracked.stats.record(run)
            dirty[agent_id] = run
            counts[agent_id, run.outcome] += 1
        return drifts

    async def _tracked(self, runs: list[c.RunCompleted]) -> dict[str, Tracked]:
        """Every agent of the batch with its window, loading those not in memory in one read."""
        first = {r.agent_id: r for r in reversed(runs)}
        missing = [a for a in first if (t := self.agents.get(a)) is None or t.window is None]
        stored = await self.checkpoints.load(missing)
        for agent_id in missing:
            tracked = self.agents.get(agent_id)
            if tracked is None:
                policy = self.policies.get(first[agent_id].service_id, agent_id)
                tracked = self.agents[agent_id] = Tracked(policy, None, AgentStats())
            p, data = tracked.policy, stored[agent_id]
            tracked.window = (
                AgentWindow.from_json(data, p.capacity, p.cfg.retries_window, p.error_window)
                if data
                else new_window(p)
            )
        if missing:
            self.metrics.agents.set(len(self.agents))
        now, batch = time.monotonic(), {}
        for agent_id in first:
            tracked = self.agents[agent_id]
            if tracked.window is not None:
                tracked.seen = now
                batch[agent_id] = tracked
        return batch

    async def forget_idle(self, idle_s: float) -> int:
        """Drop from memory the agents without a run for ``idle_s``; return how many.

        Only agents whose windows are all checkpointed go: nothing pending, no figures unsent.
        A forgotten agent's next run reloads its window from the checkpoint, so its baselines
        carry on; its dashboard figures start afresh. This bounds memory when agent ids come
        and go (a fleet renamed, ids made per job) instead of growing with every id ever seen.
        """
        async with self.flushing, self.lock:
            busy = set(self.dirty).union(*(p.agents for p in self.pending.values()))
            cutoff = time.monotonic() - idle_s
            idle = [a for a, t in self.agents.items() if t.seen <= cutoff and a not in busy]
            for agent_id in idle:
                del self.agents[agent_id]
        if idle:
            self.metrics.agents.set(len(self.agents))
            self.metrics.forgotten.inc(len(idle))
        return len(idle)

    async def flush(self, figures: bool = True) -> None:
        """Checkpoint what was handled; then the dashboard figures and counters, if asked."""
        await self.flush_checkpoints()
        if figures:
            await self.flush_figures()

    async def flush_checkpoints(self) -> None:
        """Store every partition's handled work; one flush at a time, so saves land in order."""
        async with self.flushing:
            await self._flush_checkpoints()

    async def _flush_checkpoints(self) -> None:
        async with self.lock:  # between batches: windows and positions agree
            if self.outbox:
                return  # drifts not yet sent must not be checkpointed past
            work = [(p.position, self._snapshot(p.agents)) for p in self.pending.values()]
            self.pending.clear()
        for i, (position, saved) in enumerate(work):
            try:
                stored = await self.checkpoints.save(position, saved)
            except BaseException:
                self._unsaved(work[i:])
                raise
            if stored:
                self.anchored.add(f"{position[0]}:{position[1]}")
            else:
                self._fenced(saved, position)

    def _unsaved(self, work: list[tuple[Position, dict[str, str]]]) -> None:
        """Put work whose save failed back, so the next flush stores it (with what came since)."""
        for position, saved in work:
            part = f"{position[0]}:{position[1]}"
            later = self.pending.get(part)
            self.pending[part] = later or Pending(position)
            self.pending[part].agents.update(saved)

    def _snapshot(self, agents: set[str]) -> dict[str, str]:
        out = {}
        for agent_id in agents:
            window = self.agents[agent_id].window
            assert window is not None, "pending work is cleared whenever windows are"
            out[agent_id] = window.dumps()
        return out

    async def flush_figures(self) -> None:
        counts, self.counts = self.counts, Counter()
        for (agent_id, outcome), n in counts.items():
            self.metrics.runs.labels(agent_id, outcome).inc(n)
        dirty, self.dirty = self.dirty, {}
        updates = [
            (a, figures(t.stats, w, t.policy.cfg.baseline_runs, run), point(run))
            for a, run in dirty.items()
            if (w := (t := self.agents[a]).window) is not None
        ]
        for i in range(0, len(updates), FIGURES_PER_CALL):
            await self.store.set_many_metrics(updates[i : i + FIGURES_PER_CALL])

    def _fenced(self, saved: dict[str, str], position: Position) -> None:
        """Another observer took the partition and redoes this work; nothing of it is stored.

        The windows in memory stay as they are: this observer is about to lose the partition,
        and ``resume_from`` reloads every window if it ever gets it back.
        """
        self.metrics.fenced.inc()
        log.warning("partition %s[%s] moved to another observer; work dropped", *position[:2])

    def _report(self, drifts: list[c.DriftDetected]) -> None:
        for drift in drifts:
            self.metrics.drifts.labels(drift.agent_id, drift.rule).inc()
            log.info("drift %s on %s: %s", drift.rule, drift.agent_id, drift.observed)
