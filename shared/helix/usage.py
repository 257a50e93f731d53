"""Token usage by agent, model and operation, queryable by period.

Usage is aggregated into hourly buckets (so memory and Redis use grow with the number of
agent, model and operation combinations, not with traffic) and kept for ``RETENTION_HOURS``.
Queries therefore have hour granularity; a ``TokenPeriod`` always aligns to hours. Recording with
an ``event_id`` is idempotent: a redelivered event is counted once (ids are remembered for a week
in Redis, for the last ``max_event_ids`` in memory). The last records, with their metadata, are
kept in a capped log for inspection.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis

from helix.clock import SYSTEM_CLOCK, Clock
from helix.periods import TokenPeriod, period_bounds

RETENTION_HOURS = 24 * 35
LOG_SIZE = 10_000
Dims = tuple[str, str, str]  # agent id, model, operation


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class TokenRecord:
    agent_id: str
    model: str
    operation: str
    input_tokens: int
    output_tokens: int
    at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None


class UsageStore(Protocol):
    async def add(self, hour: int, record: TokenRecord) -> bool: ...
    async def buckets(self, hours: list[int]) -> list[dict[Dims, list[int]]]: ...
    async def recent(self, limit: int) -> list[TokenRecord]: ...


class MemoryUsageStore:
    def __init__(self, max_event_ids: int = 100_000) -> None:
        self._buckets: dict[int, dict[Dims, list[int]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._max_ids = max_event_ids
        self._log: deque[TokenRecord] = deque(maxlen=LOG_SIZE)

    async def add(self, hour: int, record: TokenRecord) -> bool:
        if record.event_id is not None:
            if record.event_id in self._seen:
                return False
            self._seen[record.event_id] = None
            if len(self._seen) > self._max_ids:
                self._seen.popitem(last=False)
        cell = self._buckets.setdefault(hour, {}).setdefault(
            (record.agent_id, record.model, record.operation), [0, 0, 0]
        )
        cell[0] += record.input_tokens
        cell[1] += record.output_tokens
        cell[2] += 1
        self._log.append(record)
        for old in [h for h in self._buckets if h <= hour - RETENTION_HOURS]:
            del self._buckets[old]
        return True

    async def buckets(self, hours: list[int]) -> list[dict[Dims, list[int]]]:
        return [self._buckets.get(h, {}) for h in hours]

    async def recent(self, limit: int) -> list[TokenRecord]:
        return list(self._log)[-limit:]


_RECORD = """
if ARGV[1] ~= '' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 604800) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|in', ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|out', ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|n', 1)
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'record', ARGV[7])
return 1
"""
_SEP = "\x1f"  # unit separator: cannot clash with agent, model or operation names


class RedisUsageStore:
    def __init__(self, client: aioredis.Redis, key_prefix: str = "helix:") -> None:
        self._r, self._p = client, key_prefix
        self._script = client.register_script(_RECORD)

    async def add(self, hour: int, record: TokenRecord) -> bool:
        dims = _SEP.join((record.agent_id, record.model, record.operation))
        keys = [
            f"{self._p}tokens:event:{record.event_id}",
            f"{self._p}tokens:h:{hour}",
            f"{self._p}tokens:log",
        ]
        args: list[str | int] = [
            record.event_id or "",
            dims,
            record.input_tokens,
            record.output_tokens,
            RETENTION_HOURS * 3600,
            LOG_SIZE,
            json.dumps(asdict(record), default=str),
        ]
        return bool(await self._script(keys=keys, args=args))

    async def buckets(self, hours: list[int]) -> list[dict[Dims, list[int]]]:
        async with self._r.pipeline(transaction=False) as pipe:
            for h in hours:
                pipe.hgetall(f"{self._p}tokens:h:{h}")
            raw = await pipe.execute()
        return [_parse_bucket(b) for b in raw]

    async def recent(self, limit: int) -> list[TokenRecord]:
        entries: list[tuple[Any, dict[Any, Any]]] = await self._r.xrevrange(  # type: ignore[assignment]
            f"{self._p}tokens:log", count=limit
        )
        return [_record(fields) for _, fields in reversed(entries)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(fields: dict[Any, Any]) -> TokenRecord:
    raw = {_text(k): _text(v) for k, v in fields.items()}
    return TokenRecord(**json.loads(raw["record"]))


def _parse_bucket(raw: dict[Any, Any]) -> dict[Dims, list[int]]:
    out: dict[Dims, list[int]] = {}
    slot = {"in": 0, "out": 1, "n": 2}
    for field_name, value in raw.items():
        dims, kind = _text(field_name).rsplit("|", 1)
        agent, model, operation = dims.split(_SEP)
        out.setdefault((agent, model, operation), [0, 0, 0])[slot[kind]] = int(value)
    return out


class TokenTracker:
    """Records token usage and answers 'how many, by whom, with what, when'."""

    def __init__(self, store: UsageStore | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store: UsageStore = store or MemoryUsageStore()
        self._clock = clock

    async def record_tokens(
        self,
        agent_id: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        operation: str = "completion",
        metadata: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Record usage; False when ``event_id`` was already recorded."""
        now = self._clock.time()
        record = TokenRecord(
            agent_id,
            model,
            operation,
            input_tokens,
            output_tokens,
            now,
            dict(metadata or {}),
            event_id,
        )
        return await self.store.add(int(now // 3600), record)

    async def get_usage(
        self,
        agent_id: str | None = None,
        model: str | None = None,
        operation: str | None = None,
        period: TokenPeriod | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> TokenUsage:
        """Usage matching the filters in the current ``period`` or [since, until] (hourly)."""
        totals = await self.usage_by("agent", agent_id, model, operation, period, since, until)
        return TokenUsage(
            *(
                sum(getattr(u, f) for u in totals.values())
                for f in ("input_tokens", "output_tokens", "requests")
            )
        )

    async def usage_by(
        self,
        dimension: str,
        agent_id: str | None = None,
        model: str | None = None,
        operation: str | None = None,
        period: TokenPeriod | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> dict[str, TokenUsage]:
        """Usage grouped by ``dimension`` ("agent", "model" or "operation")."""
        index = {"agent": 0, "model": 1, "operation": 2}[dimension]
        wanted = (agent_id, model, operation)
        sums: dict[str, list[int]] = {}
        for bucket in await self.store.buckets(self._hours(period, since, until)):
            for dims, cell in bucket.items():
                if all(w is None or w == d for w, d in zip(wanted, dims, strict=True)):
                    acc = sums.setdefault(dims[index], [0, 0, 0])
                    for i in range(3):
                        acc[i] += cell[i]
        return {k: TokenUsage(*v) for k, v in sums.items()}

    def _hours(
        self, period: TokenPeriod | None, since: float | None, until: float | None
    ) -> list[int]:
        now = self._clock.time()
        if period is not None:
            since = period_bounds(period, now)[0].timestamp()
        start = int((since if since is not None else now - RETENTION_HOURS * 3600) // 3600)
        end = int((until if until is not None else now) // 3600)
        return list(range(max(start, end - RETENTION_HOURS), end + 1))

    async def recent(self, limit: int = 100) -> list[TokenRecord]:
        return await self.store.recent(limit)
