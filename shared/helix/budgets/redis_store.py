"""Budgets in Redis, shared by every process that points at the same server and prefix.

Limits live in one hash; usage in one integer counter per budget and period instance, which
expires after the period (so rollover needs no job). ``reserve`` and ``settle`` are Lua scripts:
Redis runs each one alone, so checking every budget and incrementing them is one atomic step and
concurrent callers can overshoot a limit by at most the error in one reservation's estimate.
Alert markers are ``SET NX`` keys expiring with their counter: each threshold fires once per
period across all processes. (Markers are derived inside the script, so this targets a single
Redis or Valkey node, not a cluster.)
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from helix.budgets.models import Refusal
from helix.budgets.store import Applied, Candidate, ReserveOutcome

_ALERTS = """
local function fire(key, used, limit)
  local out, util, ttl = {}, 1.0, redis.call('TTL', key)
  if limit > 0 then util = used / limit end
  local levels = {{1, 0.8}, {2, 0.95}, {3, 1.0}}
  for _, lv in ipairs(levels) do
    if util >= lv[2] and redis.call('SET', key .. ':alert:' .. lv[1], '1', 'NX', 'EX',
        math.max(ttl, 1)) then
      table.insert(out, lv[1])
    end
  end
  return out
end
-- One string per applied counter, "index:limit:used:fired codes", to keep replies short.
local function applied(out, i, key, limit, used)
  local fired = fire(key, used, limit)
  table.insert(out, string.format('%d:%d:%d:%s', i, limit, used, table.concat(fired, ',')))
end
"""

# KEYS: limits hash, counters...  ARGV: amount, force, then (budget id, ttl) per counter.
RESERVE = (
    _ALERTS
    + """
local amount, force, n = tonumber(ARGV[1]), ARGV[2] == '1', #KEYS - 1
local limits = {}
for i = 1, n do
  local lim = redis.call('HGET', KEYS[1], ARGV[1 + 2 * i])
  if lim then
    limits[i] = tonumber(lim)
    local used = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if not force and used + amount > limits[i] then
      return {0, i, used, limits[i]}
    end
  end
end
local out = {1}
for i = 1, n do
  if limits[i] then
    local used = redis.call('INCRBY', KEYS[i + 1], amount)
    if used == amount then redis.call('EXPIRE', KEYS[i + 1], ARGV[2 + 2 * i]) end
    applied(out, i, KEYS[i + 1], limits[i], used)
  end
end
return out
"""
)

# KEYS: settled marker, counters...  ARGV: delta, ttl, then the limit per counter.
SETTLE = (
    _ALERTS
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return {} end
local delta, out = tonumber(ARGV[1]), {}
for i = 2, #KEYS do
  local used = redis.call('INCRBY', KEYS[i], delta)
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  applied(out, i - 1, KEYS[i], tonumber(ARGV[i + 1]), used)
end
return out
"""
)


def _applied(reply: list[Any], start: int, names: list[tuple[str, str]]) -> tuple[Applied, ...]:
    out = []
    for item in reply[start:]:
        index, limit, used, fired = _text(item).split(":")
        budget, key = names[int(index) - 1]
        codes = tuple(int(c) for c in fired.split(",") if c)
        out.append(Applied(budget, key, int(limit), int(used), codes))
    return tuple(out)


class RedisBudgetStore:
    """Budget limits and counters in Redis under ``key_prefix``."""

    def __init__(self, client: aioredis.Redis, key_prefix: str = "helix:") -> None:
        self._r = client
        self._p = key_prefix
        self._limits_key = f"{key_prefix}budget:limits"
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)

    def _counter(self, counter_key: str) -> str:
        return f"{self._p}budget:used:{counter_key}"

    async def set_limit(self, budget_id: str, amount: int) -> None:
        await self._r.hset(self._limits_key, budget_id, amount)

    async def delete_limit(self, budget_id: str) -> None:
        await self._r.hdel(self._limits_key, budget_id)

    async def limits(self) -> dict[str, int]:
        raw = await self._r.hgetall(self._limits_key)
        return {_text(k): int(v) for k, v in raw.items()}

    async def used(self, counter_keys: list[str]) -> list[int]:
        if not counter_keys:
            return []
        values = await self._r.mget([self._counter(k) for k in counter_keys])
        return [int(v) if v is not None else 0 for v in values]

    async def reserve(
        self, candidates: list[Candidate], amount: int, force: bool
    ) -> ReserveOutcome:
        keys = [self._limits_key] + [self._counter(c.counter_key) for c in candidates]
        args: list[Any] = [amount, int(force)]
        for c in candidates:
            args += [c.budget_id, c.ttl]
        reply = await self._reserve(keys=keys, args=args)
        names = [(c.budget_id, c.counter_key) for c in candidates]
        if int(reply[0]) == 0:
            budget = names[int(reply[1]) - 1][0]
            return ReserveOutcome(False, (), Refusal(budget, int(reply[2]), int(reply[3]), amount))
        return ReserveOutcome(True, _applied(reply, 1, names))

    async def settle(
        self, reservation_id: str, counters: list[tuple[str, str, int]], delta: int, ttl: int
    ) -> tuple[Applied, ...]:
        keys = [f"{self._p}budget:settled:{reservation_id}"]
        keys += [self._counter(key) for _, key, _ in counters]
        args: list[Any] = [delta, ttl] + [limit for _, _, limit in counters]
        reply = await self._settle(keys=keys, args=args)
        return _applied(reply, 0, [(b, k) for b, k, _ in counters])

    async def close(self) -> None:
        await self._r.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
