"""Bad input on helm.telemetry goes to helm.deadletter with its reason; the pipeline goes on."""

from __future__ import annotations

import asyncio
import base64
import json

from helm import codec
from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.observer.app import build_app
from services.observer.settings import ObserverSettings
from tests.integration.services import common, running
from tests.waiting import eventually


async def test_malformed_events_are_dead_lettered_and_valid_ones_around_them_processed(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> None:
    observer = build_app(ObserverSettings(**common(kafka_settings, redis_settings)))
    letters: list[c.DeadLettered] = []

    async def keep(letter: c.DeadLettered) -> None:
        letters.append(letter)

    bus = Bus(kafka_settings, "test")
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    dead = bus.consumer([c.DEADLETTER], None, keep)
    stop = asyncio.Event()
    reader = asyncio.create_task(dead.run(stop))
    store = Store(redis_settings)
    try:
        async with running(observer):
            await asyncio.wait_for(dead.ready.wait(), 10)
            good = [c.RunCompleted(agent_id="dl-agent", input_tokens=100) for _ in range(3)]
            await bus.publish(c.TELEMETRY, good[0])
            await bus.publish_raw(c.TELEMETRY, b"this is not json {", "dl-agent")
            await bus.publish(c.TELEMETRY, good[1])
            broken = json.dumps(
                {"agent_id": "dl-agent", "input_tokens": "many", "confidence": 7}
            ).encode()
            await bus.publish_raw(c.TELEMETRY, broken, "dl-agent")
            await bus.publish(c.TELEMETRY, good[2])

            await eventually(lambda: _two(letters), what="two dead letters")
            counted = await eventually(
                lambda: _runs(store, "dl-agent", 3), what="3 valid runs counted"
            )
            assert counted == 3
    finally:
        stop.set()
        await reader
        await bus.stop()
        await store.close()

    by_payload = {base64.b64decode(x.payload_b64): x for x in letters}
    not_json = by_payload[b"this is not json {"]
    assert not_json.source_topic == c.TELEMETRY and "json" in not_json.reason.lower()
    contract = by_payload[broken]
    assert "input_tokens" in contract.reason and "confidence" in contract.reason
    assert contract.consumer == "helm.observer"
    assert codec.key_for(contract) == c.TELEMETRY


async def _two(letters: list[c.DeadLettered]) -> bool:
    return len(letters) >= 2


async def _runs(store: Store, agent: str, want: int) -> int | None:
    runs = int((await store.get_metrics(agent)).get("runs") or 0)
    return runs if runs >= want else None
