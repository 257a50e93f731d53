"""Bad input on every consumed topic, fuzzed: refused into helm.deadletter, and nobody stops.

For each topic a service consumes, hypothesis draws 1,000 payloads (valid events, valid events
with one field broken, raw garbage) and 250 valid but odd events aimed at the real agents
(``edges.py``), and all of them go to the real broker in one batch while the real services read.
Then, for every consumer of the topic: each payload the contract refuses is in
``helm.deadletter`` with its reason and bytes, nothing the contract accepts is (so no handler
failed on it), the service's ``helm_bus_deadlettered_messages_total`` says how many, and a
valid event sent after the flood still has the effect a user would see.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from helm import codec
from helm import contracts as c
from helm.settings import KafkaSettings, RedisSettings
from helm.store import Store
from services.gateway.app import build_app as gateway
from services.gateway.settings import GatewaySettings
from services.governor.app import build_app as governor
from services.governor.settings import GovernorSettings
from services.observer.app import build_app as observer
from services.observer.settings import ObserverSettings
from services.runtime.app import build_app as runtime
from services.runtime.settings import RuntimeSettings
from services.worker.app import build_app as worker
from services.worker.settings import WorkerSettings
from tests.fuzz.edges import edge_payloads
from tests.fuzz.harness import (
    Flood,
    Sent,
    barrier,
    check_refused,
    flood,
    handled,
    tap,
    wait_consumed,
)
from tests.fuzz.strategies import Payload, collect, examples_wanted, payloads
from tests.integration.services import common, running
from tests.waiting import eventually

AGENT = "classifier"  # a worker's agent in the default configuration
EDGES = 250
log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of dead-letter warnings are expected here; keep the captured log small."""
    caplog.set_level(logging.ERROR, logger="helm.bus")


async def fuzz(f: Flood, base: str) -> list[Sent]:
    drawn = collect(payloads(base), examples_wanted()) + collect(edge_payloads(base), EDGES)
    sent = await f.send(base, drawn)
    log.info("fuzz: %d payloads on %s", len(sent), base)
    return sent


def one(message: c.Message) -> list[Payload]:
    return [Payload(codec.encode(message), "valid")]


async def test_telemetry_fuzz_is_refused_and_runs_are_still_counted(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> None:
    kw, limit = common(kafka_settings, redis_settings), kafka_settings.max_message_bytes
    obs, gov = observer(ObserverSettings(**kw)), governor(GovernorSettings(**kw))
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(obs, gov):
        sent = await fuzz(f, c.TELEMETRY)
        for app, group in ((obs, "helm.observer"), (gov, "helm.governor.telemetry")):
            await handled(kafka_settings, group, c.TELEMETRY, sent)
            await check_refused(letters, c.TELEMETRY, group, sent, app.registry, limit)
        await f.send(c.TELEMETRY, one(c.RunCompleted(agent_id="after-fuzz", input_tokens=7)))
        await eventually(lambda: _counted(store, "after-fuzz"), 30, what="the run after the fuzz")


async def test_heartbeat_fuzz_is_refused_and_instances_still_appear(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> None:
    kw, limit = common(kafka_settings, redis_settings), kafka_settings.max_message_bytes
    rt = runtime(RuntimeSettings(**kw))
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(rt):
        sent = await fuzz(f, c.HEARTBEATS)
        await handled(kafka_settings, "helm.runtime", c.HEARTBEATS, sent)
        await check_refused(letters, c.HEARTBEATS, "helm.runtime", sent, rt.registry, limit)
        beat = c.InstanceHeartbeat(agent_id=AGENT, instance_id="after-fuzz", pid=4242)
        await f.send(c.HEARTBEATS, one(beat))

        async def listed() -> bool:
            return "after-fuzz" in await store.list_instances(AGENT)

        await eventually(listed, 30, what="the instance heartbeating after the fuzz")


async def test_governor_inputs_fuzzed_and_operator_commands_still_recorded(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> None:
    kw, limit = common(kafka_settings, redis_settings), kafka_settings.max_message_bytes
    gov = governor(GovernorSettings(**kw))
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(gov):
        for base in (c.DRIFT, c.CONTROL, c.ESCALATIONS):
            sent = await fuzz(f, base)
            group = f"helm.governor.{base.removeprefix('helm.')}"
            await handled(kafka_settings, group, base, sent)
            await check_refused(letters, base, group, sent, gov.registry, limit)
        after: list[c.Message] = [
            c.PauseAgent(agent_id="after-fuzz-op", actor="operator:fuzz"),
            _drift("after-fuzz-drift"),
            c.AgentEscalated(agent_id="after-fuzz-esc", service_id="after-fuzz-svc"),
        ]
        for base, message in zip((c.CONTROL, c.DRIFT, c.ESCALATIONS), after, strict=True):
            await f.send(base, one(message))
        for message in after:
            await eventually(
                functools.partial(_caused, store, message.event_id), 30, what=repr(message)
            )


async def test_worker_inputs_fuzzed_and_it_still_obeys_and_answers(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, store: Store
) -> None:
    kw, limit = common(kafka_settings, redis_settings), kafka_settings.max_message_bytes
    settings = WorkerSettings(
        **kw, agent=AGENT, instance_id="w-0", autorun=False, offline_delay_ms=0
    )
    wrk = worker(settings)
    tasks, group = c.tasks_topic(AGENT), f"worker.{AGENT}"
    async with (
        tap(kafka_settings) as letters,
        tap(kafka_settings, c.REPLIES) as answers,
        flood(kafka_settings) as f,
        running(wrk),
    ):
        assert wrk.control_consumer is not None
        await asyncio.wait_for(wrk.control_consumer.ready.wait(), 30)
        sent = await fuzz(f, c.CONTROL)
        # the odd commands may have paused or throttled it: an operator puts it right
        normal = [c.ResumeAgent(agent_id=AGENT), c.ConstrainAgent(agent_id=AGENT)]
        await barrier(f, c.CONTROL, len(sent), [wrk.registry], [*one(normal[0]), *one(normal[1])])
        await check_refused(letters, c.CONTROL, wrk.client_id(), sent, wrk.registry, limit)
        sent = await fuzz(f, tasks)
        await handled(kafka_settings, group, tasks, sent)
        await check_refused(letters, tasks, group, sent, wrk.registry, limit)
        await f.send(tasks, one(c.TaskRequested(agent_id=AGENT, request_id="after", input="hi")))

        async def answered() -> bool:
            return any(a.request_id == "after" and a.outcome == "ok" for a in answers.items)

        await eventually(answered, 30, what="the answer to the task sent after the fuzz")
        await f.send(c.CONTROL, one(c.PauseAgent(agent_id=AGENT, actor="operator:fuzz")))
        await eventually(lambda: _true(wrk.state.paused), 30, what="the worker paused")


async def test_reply_fuzz_is_refused_and_chat_answers_still_arrive(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings
) -> None:
    kw, limit = common(kafka_settings, redis_settings), kafka_settings.max_message_bytes
    gw = gateway(GatewaySettings(kafka=kafka_settings, redis=redis_settings, port=0))
    wrk = worker(WorkerSettings(**kw, agent=AGENT, instance_id="w-0", autorun=False))
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(gw, wrk):
        await asyncio.wait_for(gw.replies.ready.wait(), 30)
        await gw.gw.ensure_topic(c.tasks_topic(AGENT))
        sent = await fuzz(f, c.REPLIES)
        # the worker's answer is the first record on the topic after the flood: once the
        # gateway has it, it has handled every fuzzed one before it
        await wait_consumed([gw.registry], c.REPLIES, len(sent))
        _, got = await gw.gw.waiter.ask(gw.bus, AGENT, "still there?", 60)
        assert got is not None and got.outcome == "ok" and got.output
        await check_refused(letters, c.REPLIES, gw.client_id(), sent, gw.registry, limit)


def _drift(agent: str) -> c.DriftDetected:
    return c.DriftDetected(
        agent_id=agent, rule="tokens_spike", metric="tokens", observed=9e3, threshold=5e3, window=20
    )


async def _true(value: bool) -> bool:
    return value


async def _counted(store: Store, agent: str) -> bool:
    return int((await store.get_metrics(agent)).get("runs") or 0) >= 1


async def _caused(store: Store, event_id: str) -> bool:
    return any(event_id in i.cause_ids for _, i in await store.incidents(500))
