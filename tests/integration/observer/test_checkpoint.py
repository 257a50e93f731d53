"""The checkpoint on a real Redis: atomic with its position, and fenced against a former owner."""

from __future__ import annotations

from helm.settings import RedisSettings
from helm.store import Store
from services.observer.checkpoint import Checkpoints


async def test_an_observer_that_lost_its_partition_cannot_overwrite_the_new_owner(
    redis_settings: RedisSettings,
) -> None:
    old_store, new_store = Store(redis_settings), Store(redis_settings)
    old, new = Checkpoints(old_store), Checkpoints(new_store)
    try:
        assert await old.claim("helm.telemetry", 0) is None
        assert await old.save(("helm.telemetry", 0, 10), {"a": '{"runs": 10}'})
        assert await new.claim("helm.telemetry", 0) == 10  # a rebalance: the new owner takes it
        assert not await old.save(("helm.telemetry", 0, 20), {"a": '{"runs": 20}'})
        assert await new.load(["a", "b"]) == {"a": {"runs": 10}, "b": None}
        assert await new.save(("helm.telemetry", 0, 15), {"a": '{"runs": 15}'})
        assert await new.offsets() == {"helm.telemetry:0": 15}
        assert await old.save(("helm.telemetry", 1, 5), {"b": '{"runs": 5}'})  # other partitions
    finally:
        await old_store.close()
        await new_store.close()
