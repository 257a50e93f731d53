"""Acceptance: kill -9 the observer and the governor in the middle of a stream of 20,000 events.

After restart every event is counted exactly once in the observer's counters, the baselines match
those of an uninterrupted run (the reference replay through the pure rules), the drift ids are
the reference's, and no incident or command is duplicated. The services are real processes
(``python -m services.observer`` / ``services.governor``); the governor is a black box judged by
what it puts on helm.control and helm.incidents and by the desired state it leaves in Redis. Its
recovery delay is set to an hour so that each drifting agent is paused exactly once, whatever
the timing. One killed run is shared by the module's tests, each checking one promise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from tests.integration.observer.streams import (
    all_rules,
    all_rules_config,
    replay,
    stored_runs,
    stored_windows,
    stream,
)
from tests.waiting import eventually

EVENTS, AGENTS = 20_000, 200
SERVICES = ("observer", "governor")


class Service:
    """One service as a real process, with its log kept for the failure message."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name, self.env, self.logs = name, env, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"{self.name}.{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            env=self.env,
            cwd=self.logs,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        path = self.logs / f"{self.name}.{self.starts}.log"
        return f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]


class Seen:
    """Everything on some topics from the beginning, duplicates included."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.bus = Bus(kafka, "test-seen")
        self.messages: list[Any] = []
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _keep(self, message: Any) -> None:
        self.messages.append(message)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def __aenter__(self) -> Seen:
        consumer = self.bus.consumer([c.DRIFT, c.CONTROL, c.INCIDENTS], None, self._keep)
        self.task = asyncio.create_task(consumer.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task


@dataclass
class Aftermath:
    """What one killed and restarted run left behind, and what an uninterrupted one would."""

    killed_at: int
    windows: dict[str, dict[str, Any]]
    ref_windows: dict[str, dict[str, Any]]
    ref_drifts: dict[str, tuple[str, str]]
    seen: list[Any]
    logged: Counter[str]
    unpaused: dict[str, Any]

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.seen if isinstance(m, kind)]


@pytest.fixture(scope="module")
async def aftermath(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Aftermath:
    """20,000 runs over 200 agents; observer and governor SIGKILLed mid-stream, restarted."""
    test_id = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=f"t{test_id}.")
    redis = RedisSettings(url=redis_url, prefix=f"test:{test_id}:")
    events = stream(AGENTS, EVENTS, seed=11, prefix="kill")
    ref_windows, ref_drifts = replay(events, all_rules())
    logs = tmp_path_factory.mktemp("kill-9")
    services = [Service(n, _env(kafka, redis, test_id, logs), logs) for n in SERVICES]
    bus, store = Bus(kafka, "test"), Store(redis)
    await bus.start()
    await bus.ensure_topics(c.FIXED_TOPICS)
    try:
        async with Seen(kafka) as seen:
            for s in services:
                s.start()
            producing = asyncio.create_task(_produce(bus, events))
            await eventually(lambda: _progress(store, seen), 60, 0.05, what="mid-stream")
            for s in services:
                s.kill()
            killed_at = await stored_runs(store)
            await producing
            for s in services:
                s.start()
            await eventually(lambda: _all_counted(store), 90, 0.2, what="all events counted")
            await eventually(lambda: _governor_done(kafka, test_id), 90, 0.5, what="governor")
        drifting = {agent for agent, _ in ref_drifts.values()}
        return Aftermath(
            killed_at,
            await stored_windows(store, set(ref_windows)),
            ref_windows,
            ref_drifts,
            seen.messages,
            Counter(i.event_id for _, i in await store.incidents(10_000)),
            await _unpaused(store, drifting),
        )
    except BaseException:
        for s in services:
            print(s.tail())
        raise
    finally:
        for s in services:
            s.stop()
        await bus.stop()
        await store.close()


def test_every_event_is_counted_once_and_baselines_match_an_uninterrupted_run(
    aftermath: Aftermath,
) -> None:
    assert 0 < aftermath.killed_at < EVENTS, "the kill landed mid-stream"
    assert sum(w["runs"] for w in aftermath.windows.values()) == EVENTS
    assert aftermath.windows == aftermath.ref_windows


def test_the_drifts_are_those_of_an_uninterrupted_run(aftermath: Aftermath) -> None:
    assert {d.event_id for d in aftermath.of(c.DriftDetected)} == set(aftermath.ref_drifts)


def test_no_incident_or_command_is_duplicated(aftermath: Aftermath) -> None:
    for kind in (c.PauseAgent, c.ConstrainAgent, c.IncidentRecorded):
        ids = Counter(m.event_id for m in aftermath.of(kind))
        assert not [i for i, n in ids.items() if n > 1], f"duplicated {kind.__name__}"
    pauses = Counter(p.agent_id for p in aftermath.of(c.PauseAgent))
    drifting = {agent for agent, _ in aftermath.ref_drifts.values()}
    assert set(pauses) <= drifting and set(pauses.values()) == {1}, "one pause per agent"
    assert aftermath.logged and max(aftermath.logged.values()) == 1, "incident log"


def test_every_drifting_agent_is_paused_in_redis(aftermath: Aftermath) -> None:
    assert not aftermath.unpaused, f"not paused in Redis (the truth): {aftermath.unpaused}"


async def _unpaused(store: Store, agents: set[str]) -> dict[str, Any]:
    """Agents whose desired control is not paused, with their status."""
    out: dict[str, Any] = {}
    for agent in sorted(agents):
        control = await store.get_control(agent)
        if not control.paused:
            out[agent] = (await store.get_status(agent), control)
    return out


def _env(kafka: KafkaSettings, redis: RedisSettings, test_id: str, tmp: Path) -> dict[str, str]:
    config = all_rules_config(tmp, "\n[governor]\nrecovery_delay_s = 3600.0\n")
    return {
        **os.environ,
        "HELM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "HELM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "HELM_KAFKA_FETCH_MAX_WAIT_MS": "20",
        "HELM_REDIS_URL": redis.url,
        "HELM_REDIS_PREFIX": redis.prefix,
        "HELM_CONFIG_FILE": str(config),
        "HELM_OBSERVER_OPS_PORT": "0",
        "HELM_GOVERNOR_OPS_PORT": "0",
        "HELM_OBSERVER_GROUP": f"obs-{test_id}",
        "HELM_GOVERNOR_GROUP": f"gov-{test_id}",
        "HELM_LOG_LEVEL": "WARNING",
        "HELM_LOG_JSON": "false",
    }


async def _produce(bus: Bus, events: list[c.RunCompleted]) -> None:
    """A stream, not a dump: slices of 500 about ten times a second."""
    for i in range(0, len(events), 500):
        await bus.publish_many(c.TELEMETRY, events[i : i + 500])
        await asyncio.sleep(0.1)


async def _progress(store: Store, seen: Seen) -> bool:
    """Far enough in that both services have work behind them and ahead of them."""
    return await stored_runs(store) >= EVENTS // 4 and bool(seen.of(c.PauseAgent))


async def _all_counted(store: Store) -> bool:
    return await stored_runs(store) >= EVENTS


async def _governor_done(kafka: KafkaSettings, test_id: str) -> bool:
    """Some governor group has committed the end of every partition of helm.telemetry, and
    some the end of every partition of helm.drift."""
    committed = await _committed(kafka, f"gov-{test_id}")
    for base in (c.TELEMETRY, c.DRIFT):
        ends = await _ends(kafka, base)
        if not any(offsets == ends for offsets in committed.get(base, [])):
            return False
    return True


async def _ends(kafka: KafkaSettings, base: str) -> list[int]:
    """Each partition's end, from a fetch's high watermark (the embedded broker's "latest
    offset" answer can fall inside the last batch)."""
    reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        parts = [TopicPartition(kafka.topic_prefix + base, p) for p in range(4)]
        reader.assign(parts)
        await reader.seek_to_end(*parts)
        while any(reader.highwater(tp) is None for tp in parts):
            await reader.getmany(*parts, timeout_ms=100)
        return [int(reader.highwater(tp)) for tp in parts]
    finally:
        await reader.stop()


async def _committed(kafka: KafkaSettings, prefix: str) -> dict[str, list[list[int]]]:
    """For each topic, the committed offsets of each group whose name starts so."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        groups = [g for g, _ in await admin.list_consumer_groups() if g.startswith(prefix)]
    finally:
        await admin.close()
    out: dict[str, list[list[int]]] = {}
    for group in groups:
        reader = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False
        )
        await reader.start()
        try:
            for base in (c.TELEMETRY, c.DRIFT):
                parts = [TopicPartition(kafka.topic_prefix + base, p) for p in range(4)]
                reader.assign(parts)
                offsets = [await reader.committed(tp) or 0 for tp in parts]
                out.setdefault(base, []).append(offsets)
        finally:
            await reader.stop()
    return out
