"""Budgets in Redis, shared by every process that points at the same server and prefix.

Limits live in one hash; usage in one integer counter per budget and period instance, which
expires after the period (so rollover needs no job). ``reserve`` and ``settle`` are Lua scripts:
Redis runs each one alone, so checking every budget and incrementing them is one atomic step and
concurrent callers can overshoot a limit by at most the error in one reservation's estimate.
Alert markers are ``SET NX`` keys expiring with their counter: each threshold fires once per
period across all processes. (Counter and marker keys are derived inside the scripts, so this
targets a single Redis or Valkey node, not a cluster.)
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from helix.budgets.models import Refusal
from helix.budgets.store import Applied, Candidate, ReserveOutcome

_ALERTS = """
local levels = {{1, 0.8}, {2, 0.95}, {3, 1.0}}
local function fire(key, used, limit)
  local out, util = {}, 1.0
  if limit > 0 then util = used / limit end
  if util < levels[1][2] then return out end
  local ttl = math.max(redis.call('TTL', key), 1)
  for _, lv in ipairs(levels) do
    if util >= lv[2] and redis.call('SET', key .. ':alert:' .. lv[1], '1', 'NX', 'EX', ttl) then
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

# The candidates travel as one argument, "budget id US counter key US ttl RS" per budget (US and
# RS are the ASCII unit and record separators), not as a list of keys and arguments: encoding two
# dozen arguments per call costs the client more than the script costs the server.
_CANDIDATE = r"([^\31]*)\31([^\31]*)\31([^\30]*)\30"
_COUNTER = r"([^\31]*)\31([^\30]*)\30"

# KEYS: limits hash.  ARGV: amount, force, counter key prefix, candidates.
RESERVE = (
    _ALERTS
    + """
local amount, force, prefix = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3]
local ids, keys, ttls = {}, {}, {}
for bid, key, ttl in string.gmatch(ARGV[4], '"""
    + _CANDIDATE
    + """') do
  ids[#ids + 1], keys[#keys + 1], ttls[#ttls + 1] = bid, prefix .. key, ttl
end
if #ids == 0 then return {1} end
local found, limits = redis.call('HMGET', KEYS[1], unpack(ids)), {}
for i = 1, #ids do
  if found[i] then
    limits[i] = tonumber(found[i])
    local used = tonumber(redis.call('GET', keys[i]) or '0')
    if not force and used + amount > limits[i] then
      return {0, i, used, limits[i]}
    end
  end
end
local out = {1}
for i = 1, #ids do
  if limits[i] then
    local used = redis.call('INCRBY', keys[i], amount)
    if used == amount then redis.call('EXPIRE', keys[i], ttls[i]) end
    applied(out, i, keys[i], limits[i], used)
  end
end
return out
"""
)

# KEYS: settled marker.  ARGV: delta, ttl, counter key prefix, "counter key US limit RS" each.
SETTLE = (
    _ALERTS
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return {} end
local delta, prefix, out, i = tonumber(ARGV[1]), ARGV[3], {}, 0
for key, limit in string.gmatch(ARGV[4], '"""
    + _COUNTER
    + """') do
  i = i + 1
  key = prefix .. key
  local used = redis.call('INCRBY', key, delta)
  -- A counter gone (expired) since the reservation is new now, and needs an expiry.
  if used == delta and redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2]) end
  applied(out, i, key, tonumber(limit), used)
end
return out
"""
)
US, RS = "\x1f", "\x1e"


def _applied(reply: list[Any], start: int, names: list[tuple[str, str]]) -> tuple[Applied, ...]:
    out = []
    for item in reply[start:]:
        index, limit, used, fired = _text(item).split(":")
        budget, key = names[int(index) - 1]
        codes = tuple(int(c) for c in fired.split(",")) if fired else ()
        out.append(Applied(budget, key, int(limit), int(used), codes))
    return tuple(out)


class RedisBudgetStore:
    """Budget limits and counters in Redis under ``key_prefix``."""

    def __init__(self, client: aioredis.Redis, key_prefix: str = "helix:") -> None:
        self._r = client
        self._p = key_prefix
        self._limits_key = f"{key_prefix}budget:limits"
        self._counters = f"{key_prefix}budget:used:"
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)
        # Candidate lists are reused by the manager until a period ends: so is their encoding.
        self._encoded: dict[int, tuple[list[Candidate], str]] = {}

    def _counter(self, counter_key: str) -> str:
        return self._counters + counter_key

    def _encode(self, candidates: list[Candidate]) -> str:
        hit = self._encoded.get(id(candidates))
        if hit is not None and hit[0] is candidates:
            return hit[1]
        for cand in candidates:
            if US in cand.counter_key or RS in cand.counter_key:
                raise ValueError(f"budget ids cannot hold control characters: {cand.budget_id!r}")
        text = "".join(f"{c.budget_id}{US}{c.counter_key}{US}{c.ttl}{RS}" for c in candidates)
        if len(self._encoded) > 10_000:
            self._encoded.clear()
        self._encoded[id(candidates)] = (candidates, text)
        return text

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
        args: list[str | int] = [amount, int(force), self._counters, self._encode(candidates)]
        reply = await self._reserve(keys=[self._limits_key], args=args)
        names = [(c.budget_id, c.counter_key) for c in candidates]
        if int(reply[0]) == 0:
            budget = names[int(reply[1]) - 1][0]
            return ReserveOutcome(False, (), Refusal(budget, int(reply[2]), int(reply[3]), amount))
        return ReserveOutcome(True, _applied(reply, 1, names))

    async def settle(
        self, reservation_id: str, counters: list[tuple[str, str, int]], delta: int, ttl: int
    ) -> tuple[Applied, ...]:
        encoded = "".join(f"{key}{US}{limit}{RS}" for _, key, limit in counters)
        args: list[str | int] = [delta, ttl, self._counters, encoded]
        reply = await self._settle(keys=[f"{self._p}budget:settled:{reservation_id}"], args=args)
        return _applied(reply, 0, [(b, k) for b, k, _ in counters])

    async def close(self) -> None:
        await self._r.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
