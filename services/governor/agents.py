"""The agent-level governor's effects, and the holds the outer levels put on agents.

Every decision about an agent is taken under its mutex (in-process and in Redis), on state read
in one round trip, and stored in one transaction before anything is announced: status, base
control, holds, then the effective control the workers obey, then incidents (deduplicated by
id), then commands and escalations on Kafka. An event is marked handled only after that; a
redelivered event is skipped, and one redelivered before it was marked finds the state already
moved and decides nothing new.

Runs are the hot path (one per agent run, ~1,000/s): they matter only for agents that are
recovering, so a run of any other agent is dropped without I/O. The set of recovering agents is
kept in memory, updated on this process's transitions and re-read from Redis every refresh, so
a transition made by another governor process is seen within one refresh interval.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from helm import contracts as c
from helm.bus import Bus
from helm.state import AgentState, Control, Status
from helm.store import Store
from services.governor import machine
from services.governor.directory import Directory
from services.governor.holds import Hold, Holds, after_operator, commands_between, effective, within
from services.governor.ledger import AgentRecord, Ledger
from services.governor.locks import Mutexes
from services.governor.machine import Decision
from services.governor.metrics import GovernorMetrics
from services.governor.policy import Policies

log = logging.getLogger(__name__)
Decide = Callable[[AgentRecord], Decision | None]


class AgentLevel:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        policies: Policies,
        metrics: GovernorMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.bus, self.store, self.policies, self.metrics, self.clock = (
            bus,
            store,
            policies,
            metrics,
            clock,
        )
        self.ledger = Ledger(store)
        self.mutex = Mutexes(store.redis, lambda name: store.key("governor", "lock", name))
        self.directory = Directory()
        self.recovering: set[str] = set()
        self._moved: dict[str, bool] | None = None  # transitions made during a refresh

    # -- events ----------------------------------------------------------------------------------

    async def on_drift(self, d: c.DriftDetected) -> None:
        p = self.policies.resolve(d.agent_id, d.service_id)
        await self._once(
            "drift",
            d.event_id,
            d.agent_id,
            lambda r: machine.on_drift(r.status, d, p, self.clock()),
        )

    async def on_run(self, run: c.RunCompleted) -> None:
        if run.agent_id not in self.recovering:
            return
        p = self.policies.resolve(run.agent_id, run.service_id)
        await self._once(
            "run",
            run.event_id,
            run.agent_id,
            lambda r: machine.on_run(r.status, run, p, self.clock()),
        )

    async def on_operator(self, cmd: c.ControlCommand) -> None:
        """Record an operator's command on one agent, obeyed as given (holds it overrides go)."""
        agent = cmd.agent_id
        async with self.mutex.hold(f"agent:{agent}"):
            rec = await self.ledger.read(agent)
            d = machine.on_operator(agent, rec.status, rec.base, cmd, self.clock())
            if d is not None:
                await self._apply(agent, rec, d, after_operator(rec.holds, cmd))

    async def tick(self) -> None:
        """Start the recovery attempts that are due (each claimed by one process)."""
        for agent in await self.ledger.claim_due(self.clock()):
            try:
                await self._decide(agent, functools.partial(self._recover, agent))
            except BaseException:
                await self.store.redis.zadd(self.ledger.pending_key, {agent: self.clock()})
                raise

    def _recover(self, agent: str, rec: AgentRecord) -> Decision | None:
        p = self.policies.resolve(agent, self.directory.service_of(agent))
        return machine.on_tick(agent, rec.status, p, self.clock())

    # -- holds -----------------------------------------------------------------------------------

    async def put_hold(
        self, agent: str, source: str, hold: Hold | None, cause: str, actor: str, reason: str
    ) -> None:
        """Put ``hold`` on ``agent`` (None lifts it) and tell its workers what changed, if any."""
        async with self.mutex.hold(f"agent:{agent}"):
            rec = await self.ledger.read(agent)
            holds: Holds = {s: h for s, h in rec.holds.items() if s != source}
            if hold is not None:
                holds[source] = hold
            if holds == rec.holds:
                return
            rec.holds = holds
            rec.dirty.add("holds")
            eff = effective(rec.base, holds, self.clock())
            await self.ledger.write(agent, rec, eff)
            causes = hold.cause_ids if hold else [cause]
            changes = commands_between(agent, rec.control, eff, cause, actor, reason, causes)
            await self._publish(agent, changes)

    # -- refresh ---------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the recovering agents and the hierarchy from Redis."""
        self._moved = {}
        try:
            members = await self.ledger.recovering()
            self.directory = Directory.parse(await self.store.get_hierarchy())
        finally:
            moved, self._moved = self._moved, None
        for agent, recovering in moved.items():
            (members.add if recovering else members.discard)(agent)
        self.recovering = members

    async def refresh_states(self) -> None:
        """Set the agent-state gauge from every agent's status in Redis."""
        agents = await self.store.agent_ids()
        pipe = self.store.redis.pipeline(transaction=False)
        for agent in agents:
            pipe.hget(self.store.key("agent", agent), "status")
        for agent, raw in zip(agents, await pipe.execute(), strict=True):
            state = Status.model_validate_json(raw).state if raw else AgentState.HEALTHY
            self.metrics.state(agent, state)

    # -- internals -------------------------------------------------------------------------------

    async def _once(self, kind: str, event_id: str, agent: str, decide: Decide) -> None:
        if await self.ledger.handled(kind, event_id):
            return
        await self._decide(agent, decide)
        await self.ledger.mark_handled(kind, event_id)

    async def _decide(self, agent: str, decide: Decide) -> None:
        async with self.mutex.hold(f"agent:{agent}"):
            rec = await self.ledger.read(agent)
            d = decide(rec)
            if d is not None:
                await self._apply(agent, rec, d)

    async def _apply(
        self, agent: str, rec: AgentRecord, d: Decision, holds: Holds | None = None
    ) -> None:
        before, before_ctl = rec.status, rec.control
        rec.status = d.status
        rec.dirty.add("status")
        if d.control is not None:
            rec.base = d.control
            rec.dirty.add("base")
        if holds is not None and holds != rec.holds:
            rec.holds = holds
            rec.dirty.add("holds")
        eff: Control | None = None
        if rec.dirty & {"base", "holds"}:
            eff = effective(rec.base, rec.holds, self.clock())
        await self.ledger.write(agent, rec, eff)
        self._track(agent, d.status.state)
        for incident in d.incidents:
            await self.record(incident)
        await self._publish(agent, within(d.commands, eff or before_ctl))
        for esc in d.escalations:
            await self.bus.publish(c.ESCALATIONS, esc)
        if before.state != d.status.state:
            self.metrics.transitions.labels(agent, d.status.state.value).inc()
            log.info(
                "%s: %s -> %s (%s)",
                agent,
                before.state.value,
                d.status.state.value,
                d.status.reason,
            )

    def _track(self, agent: str, state: AgentState) -> None:
        recovering = state == AgentState.RECOVERING
        (self.recovering.add if recovering else self.recovering.discard)(agent)
        if self._moved is not None:
            self._moved[agent] = recovering
        self.metrics.state(agent, state)

    async def _publish(self, agent: str, commands: list[c.ControlCommand]) -> None:
        for cmd in commands:
            await self.bus.publish(c.CONTROL, cmd)
            self.metrics.actions.labels(agent, type(cmd).__name__).inc()

    async def record(self, incident: c.IncidentRecorded) -> None:
        if await self.store.record_incident(incident):
            await self.bus.publish(c.INCIDENTS, incident)
