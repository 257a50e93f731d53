"""Issue acceptance: an anomaly injected through the gateway is detected, paused, recovered.

Watches what a user would watch: the topics, ``GET /state`` and the incident log, in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings
from tests.e2e.stack import RunningStack
from tests.waiting import eventually


class Tap:
    """Everything seen on some topics from now on, with the time it arrived."""

    def __init__(self, stack: RunningStack, topics: list[str]) -> None:
        settings = KafkaSettings(
            bootstrap=stack.kafka_bootstrap, topic_prefix=stack.topic_prefix, fetch_max_wait_ms=20
        )
        self.bus = Bus(settings, "e2e-tap")
        self.topics = topics
        self.seen: list[tuple[float, Any]] = []
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _keep(self, message: Any) -> None:
        self.seen.append((time.time(), message))

    async def __aenter__(self) -> Tap:
        consumer = self.bus.consumer(
            self.topics, None, self._keep, from_latest=True, dead_letter=False
        )
        self.task = asyncio.create_task(consumer.run(self.stop))
        await asyncio.wait_for(consumer.ready.wait(), 20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self.task:
            await self.task

    def first(self, kind: type, **match: Any) -> tuple[float, Any] | None:
        for at, m in self.seen:
            if isinstance(m, kind) and all(getattr(m, k) == v for k, v in match.items()):
                return at, m
        return None


async def agent(client: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    state = (await client.get("/state")).json()
    return dict(state["agents"][agent_id])


async def test_anomaly_is_detected_paused_recovered_and_logged(running_stack: RunningStack) -> None:
    headers = {"Authorization": f"Bearer {running_stack.token}"}
    async with httpx.AsyncClient(
        base_url=running_stack.base_url, headers=headers, timeout=10
    ) as client:

        async def warm() -> bool:
            a = await agent(client, "classifier")
            return a["status"]["state"] == "healthy" and int(a["metrics"].get("runs") or 0) >= 8

        await eventually(warm, 60, 0.2, what="classifier healthy with a baseline")
        async with Tap(running_stack, [c.TELEMETRY, c.DRIFT, c.CONTROL]) as tap:
            resp = await client.post("/simulate/anomaly/classifier", json={"duration_s": 4})
            assert resp.status_code in (200, 202), resp.text

            async def drifted() -> tuple[float, Any] | None:
                return tap.first(c.DriftDetected, agent_id="classifier")

            _, drift = await eventually(drifted, 10, what="DriftDetected on helm.drift")
            paused = await eventually(
                lambda: _state(client, "paused"), 10, what="paused in GET /state"
            )
            assert paused
            items = await incident_log(client)
            pause = [i for i in items if i["kind"] == "paused" and i["scope_id"] == "classifier"]
            assert pause and drift.event_id in pause[0]["cause_ids"]
            await eventually(lambda: _state(client, "recovering"), 30, 0.05, what="recovering")
            await eventually(
                lambda: _state(client, "healthy"), 60, 0.1, what="healthy after the anomaly ended"
            )

            run_id = drift.evidence_run_ids[-1]
            drifting = next(
                m for _, m in tap.seen if isinstance(m, c.RunCompleted) and m.run_id == run_id
            )
            pause_at, _ = tap.first(c.PauseAgent, agent_id="classifier") or (0.0, None)
            print(
                f"\ndrifting run -> PauseAgent delivered on helm.control: {(pause_at - drifting.ts) * 1000:.0f} ms"
            )
            assert pause_at > drifting.ts

        kinds = [
            i["kind"] for i in reversed(await incident_log(client)) if i["scope_id"] == "classifier"
        ]
        last = kinds[len(kinds) - 1 - kinds[::-1].index("paused") :]
        assert "recovering" in last and last[-1] == "recovered", kinds


async def incident_log(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The incident log, newest first, as the API pages it."""
    page = (await client.get("/incidents", params={"limit": 100})).json()
    return [entry["incident"] for entry in page["incidents"]]


async def _state(client: httpx.AsyncClient, want: str) -> bool:
    return bool((await agent(client, "classifier"))["status"]["state"] == want)
