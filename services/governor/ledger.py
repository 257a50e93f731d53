"""The governors' own keys in Redis, beside the agent hashes of ``helm.store``.

- ``governor:base`` (hash, agent → Control): the agent governor's or operator's control, before
  holds; the agent's ``control`` field is always ``holds.effective(base, holds)``.
- ``governor:holds:<agent>`` (hash, source → Hold): the outer governors' holds on the agent.
- ``governor:recovering`` (set): agents in ``recovering``, the only ones whose runs matter.
- ``governor:recoveries`` (sorted set, agent → due time): pending recovery attempts.
- ``governor:budgets`` (hash, budget id → Mark): the level last acted on, per budget.
- ``seen:governor:<kind>:<event id>``: events whose effects are stored (``helm.store.first_time``).
An agent's status, base, holds and recovering membership are written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from helm.state import AgentState, Control, Status
from helm.store import Store
from services.governor.holds import Hold, Holds


class Mark(BaseModel):
    """The budget level the organisation governor last acted on, and in which period."""

    model_config = ConfigDict(frozen=True)

    period: str
    level: str


@dataclass
class AgentRecord:
    """What the governors know about one agent, as read under its lock."""

    status: Status
    base: Control
    holds: Holds
    control: Control  # effective: what its workers obey
    dirty: set[str] = field(default_factory=set)


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.base_key = store.key("governor", "base")
        self.recovering_key = store.key("governor", "recovering")
        self.pending_key = store.key("governor", "recoveries")
        self.marks_key = store.key("governor", "budgets")

    def holds_key(self, agent: str) -> str:
        return self.store.key("governor", "holds", agent)

    async def read(self, agent: str) -> AgentRecord:
        """One round trip: status, base control, holds and effective control."""
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hmget(self.store.key("agent", agent), "status", "control")
        pipe.hget(self.base_key, agent)
        pipe.hgetall(self.holds_key(agent))
        (status, control), base, holds = await pipe.execute()
        ctl = Control.model_validate_json(control) if control else Control()
        held = {s: Hold.model_validate_json(h) for s, h in holds.items()}
        return AgentRecord(
            status=Status.model_validate_json(status) if status else Status(),
            base=Control.model_validate_json(base) if base else (Control() if held else ctl),
            holds=held,
            control=ctl,
        )

    async def write(self, agent: str, rec: AgentRecord, effective: Control | None) -> None:
        """Store what changed in ``rec`` (named in ``rec.dirty``) and the new effective control."""
        pipe = self.store.redis.pipeline(transaction=True)
        if "status" in rec.dirty:
            pipe.hset(self.store.key("agent", agent), "status", rec.status.model_dump_json())
            if rec.status.state == AgentState.RECOVERING:
                pipe.sadd(self.recovering_key, agent)
            else:
                pipe.srem(self.recovering_key, agent)
            if rec.status.recover_at is not None:
                pipe.zadd(self.pending_key, {agent: rec.status.recover_at})
        if "base" in rec.dirty:
            pipe.hset(self.base_key, agent, rec.base.model_dump_json())
        if "holds" in rec.dirty:
            pipe.delete(self.holds_key(agent))
            if rec.holds:
                pipe.hset(self.holds_key(agent), mapping=_dump(rec.holds))
        # The desired control goes in the same transaction as the status: a governor killed
        # between two writes would leave an agent "paused" whose workers were never told.
        control_changed = effective is not None and not _same(effective, rec.control)
        if effective is not None and control_changed:
            pipe.hset(self.store.key("agent", agent), "control", effective.model_dump_json())
        await pipe.execute()
        if "status" in rec.dirty:
            payload = rec.status.model_dump(mode="json")
            await self.store.publish_update(
                "agent", {"agent_id": agent, "field": "status", "value": payload}
            )
        if effective is not None and control_changed:
            value = effective.model_dump(mode="json")
            await self.store.publish_update(
                "agent", {"agent_id": agent, "field": "control", "value": value}
            )

    async def handled(self, kind: str, event_id: str) -> bool:
        """Whether the event's effects were stored already (``mark_handled`` was called)."""
        return bool(
            await self.store.redis.exists(self.store.key("seen", f"governor:{kind}", event_id))
        )

    async def mark_handled(self, kind: str, event_id: str) -> None:
        await self.store.first_time(f"governor:{kind}", event_id)

    async def recovering(self) -> set[str]:
        return set(await self.store.redis.smembers(self.recovering_key))

    async def claim_due(self, now: float) -> list[str]:
        """Agents whose recovery attempt is due, each removed from the queue by one caller."""
        due = await self.store.redis.zrangebyscore(self.pending_key, "-inf", now)
        return [a for a in due if await self.store.redis.zrem(self.pending_key, a)]

    async def marks(self) -> dict[str, Mark]:
        raw = await self.store.redis.hgetall(self.marks_key)
        return {b: Mark.model_validate_json(m) for b, m in raw.items()}

    async def set_mark(self, budget_id: str, mark: Mark | None) -> None:
        if mark is None:
            await self.store.redis.hdel(self.marks_key, budget_id)
        else:
            await self.store.redis.hset(self.marks_key, budget_id, mark.model_dump_json())


def _dump(holds: Holds) -> dict[str, str]:
    return {s: h.model_dump_json() for s, h in holds.items()}


def _same(a: Control, b: Control) -> bool:
    """Equal but for the time of the change."""
    return a.model_copy(update={"updated": 0.0}) == b.model_copy(update={"updated": 0.0})
