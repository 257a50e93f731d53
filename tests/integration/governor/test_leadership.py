"""Several governor processes: one leads the periodic work, another takes over when it stops."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.governor.locks import Lease, Mutexes
from tests.waiting import eventually


async def test_one_process_leads_and_another_takes_over_when_it_stops_or_dies(
    redis: Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}governor:leader"
    first, second = Lease(redis, key, ttl_s=30), Lease(redis, key, ttl_s=30)
    assert await first.renew() and await first.renew()
    assert not await second.renew()
    await first.release()  # a clean stop hands over at once
    assert await second.renew() and not await first.renew()
    dying = Lease(redis, f"{key_prefix}other", ttl_s=0.2)
    assert await dying.renew()  # ... and a dead leader's lease lapses on its own
    heir = Lease(redis, f"{key_prefix}other", ttl_s=30)
    assert await eventually(heir.renew, 5, what="the lapsed lease taken over")


async def test_decisions_on_one_agent_never_overlap_across_processes(
    redis: Redis, key_prefix: str
) -> None:
    procs = [Mutexes(redis, lambda n: f"{key_prefix}lock:{n}") for _ in range(2)]
    inside: list[int] = []
    overlaps: list[int] = []

    async def decide(mutex: Mutexes, who: int) -> None:
        async with mutex.hold("agent:a"):
            if inside:
                overlaps.append(who)
            inside.append(who)
            await asyncio.sleep(0)  # yield to the other process mid-decision
            inside.remove(who)

    await asyncio.gather(*(decide(procs[i % 2], i) for i in range(20)))
    assert overlaps == []
    assert [m.local for m in procs] == [{}, {}], "no lock kept for a name nobody holds"
