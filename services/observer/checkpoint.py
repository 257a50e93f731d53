"""The observer's checkpoint in Redis: agents' windows and partition positions, written together.

Guarantees:
- a batch's window updates and the position after it are stored in one atomic step (a Lua
  script), so after any crash each partition resumes exactly after the last batch whose effects
  are stored: no run counted twice, none missed;
- ownership is fenced per partition: taking a partition bumps its epoch, and a checkpoint is
  written only while the writer's epoch is still current. An observer that lost a partition in a
  rebalance (or stalled past its session) can no longer write it; its batch is dropped and the
  new owner, which read the position after its bump, redoes it.
Keys: ``observer:window:<agent>`` (JSON), ``observer:offsets`` and ``observer:epochs`` (hashes
keyed ``<topic>:<partition>``).
"""

from __future__ import annotations

import json
from typing import Any

from helm.bus import Position
from helm.store import Store

_SAVE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""


class Checkpoints:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.epochs: dict[str, int] = {}  # partition field -> our epoch on it
        self._save = store.redis.register_script(_SAVE)

    def window_key(self, agent_id: str) -> str:
        return self.store.key("observer", "window", agent_id)

    @property
    def offsets_key(self) -> str:
        return self.store.key("observer", "offsets")

    @property
    def epochs_key(self) -> str:
        return self.store.key("observer", "epochs")

    async def claim(self, topic: str, partition: int) -> int | None:
        """Take a partition: fence out its previous owner; return where to resume (None: none)."""
        field = f"{topic}:{partition}"
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.hincrby(self.epochs_key, field, 1)
        pipe.hget(self.offsets_key, field)
        epoch, offset = await pipe.execute()
        self.epochs[field] = int(epoch)
        return int(offset) if offset is not None else None

    async def load(self, agent_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The stored windows of these agents (None for an agent never checkpointed)."""
        if not agent_ids:
            return {}
        raws = await self.store.redis.mget([self.window_key(a) for a in agent_ids])
        return {a: json.loads(r) if r else None for a, r in zip(agent_ids, raws, strict=True)}

    async def save(self, position: Position, windows: dict[str, str]) -> bool:
        """Store windows (JSON text by agent) and the position after them; False if another
        observer owns the partition now."""
        topic, partition, offset = position
        field = f"{topic}:{partition}"
        if field not in self.epochs:
            await self.claim(topic, partition)
        keys = [self.epochs_key, self.offsets_key, *map(self.window_key, windows)]
        args = [field, self.epochs[field], offset, *windows.values()]
        return bool(await self._save(keys=keys, args=args))

    async def offsets(self) -> dict[str, int]:
        """Every partition's stored position (for operators and tests)."""
        rows = await self.store.redis.hgetall(self.offsets_key)
        return {k: int(v) for k, v in rows.items()}
