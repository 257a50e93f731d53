"""After the faults: nothing done twice, and every agent in a state its governor decided."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from helm import contracts as c
from helm.bus import Bus
from helm.store import Store


async def read_all(bus: Bus, base: str, quiet_s: float = 2.0) -> list[Any]:
    """Every message on a topic from the beginning (no group), until it has been quiet."""
    seen: list[Any] = []

    async def keep(message: Any) -> None:
        seen.append(message)

    stop = asyncio.Event()
    consumer = bus.consumer([base], None, keep, dead_letter=False)
    task = asyncio.create_task(consumer.run(stop))
    last, still = -1, 0.0
    while still < quiet_s:
        await asyncio.sleep(0.25)
        still = still + 0.25 if len(seen) == last else 0.0
        last = len(seen)
    stop.set()
    await task
    return seen


def duplicated(messages: list[Any]) -> list[str]:
    counts = Counter(m.event_id for m in messages)
    return [event_id for event_id, n in counts.items() if n > 1]


async def undecided_states(store: Store) -> list[str]:
    """Agents whose stored state is not the one their last recorded transition set."""
    last_to: dict[str, str] = {}
    for _, incident in reversed(await store.incidents(10_000)):
        if incident.scope == "agent" and incident.state_to:
            last_to[incident.scope_id] = incident.state_to
    wrong = []
    for agent, state in last_to.items():
        current = (await store.get_status(agent)).state.value
        if current != state:
            wrong.append(f"{agent}: {current}, last decided {state}")
    return wrong


async def audit(bus: Bus, store: Store) -> dict[str, Any]:
    incidents = await read_all(bus, c.INCIDENTS)
    commands = await read_all(bus, c.CONTROL)
    stored = [i for _, i in await store.incidents(10_000)]
    return {
        "incidents": len(incidents),
        "commands": len(commands),
        "duplicate_incidents_on_topic": duplicated(incidents),
        "duplicate_incidents_in_log": duplicated(stored),
        "duplicate_commands": duplicated(commands),
        "undecided_states": await undecided_states(store),
    }
