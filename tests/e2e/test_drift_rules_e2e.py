"""Each drift rule end to end: hand-made runs in, DriftDetected and the governor's PauseAgent out.

A stack of its own (``helmctl up``) whose configuration turns the further rules on for one service
(``[drift.services.e2e-rules.rules.*]``), and no workers. Runs are published as a user testing a
stack would: with ``helmctl publish`` (flags or a file) and with a plain aiokafka producer that
knows nothing of Helm's code. Each test uses agent ids of its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from helm import contracts as c
from helm.settings import RedisSettings
from helm.store import Store
from tests.e2e.stack import RunningStack, start_stack
from tests.e2e.test_anomaly_flow import Tap
from tests.e2e.test_helmctl_publish import helmctl, jsonl, new_agent
from tests.waiting import eventually

SERVICE = "e2e-rules"
CONFIG = f"""
[org]
id = "e2e"
name = "Drift rules under test"

[[services]]
id = "{SERVICE}"

[drift.services.{SERVICE}.rules.latency_spike]
enabled = true
[drift.services.{SERVICE}.rules.cost_spike]
enabled = true
[drift.services.{SERVICE}.rules.error_rate]
enabled = true
"""


@pytest.fixture(scope="module")
def rules_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("rules-stack")
    (workdir / "helm.toml").write_text(CONFIG)
    stack = start_stack(workdir, env={"HELM_CONFIG_FILE": str(workdir / "helm.toml")})
    try:
        yield stack
    finally:
        code = stack.stop()
        assert code == 0, f"helmctl up exited with {code}:\n{stack.log()[-4000:]}"


def run(agent: str, **fields: Any) -> dict[str, Any]:
    """A healthy run as JSON, as any producer would write it."""
    base: dict[str, Any] = {"type": "RunCompleted", "agent_id": agent, "service_id": SERVICE}
    base |= {"input_tokens": 400, "output_tokens": 100, "latency_ms": 300.0, "cost": 0.001}
    return base | {"confidence": 0.9, "run_id": f"{agent}-{random.getrandbits(40):x}"} | fields


async def produce(stack: RunningStack, runs: list[dict[str, Any]]) -> None:
    """Publish with a plain aiokafka producer: JSON values keyed by agent id."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for r in runs:
            value, key = json.dumps(r).encode(), r["agent_id"].encode()
            await producer.send(stack.topic_prefix + "helm.telemetry", value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def drift_and_pause(tap: Tap, agent: str) -> c.DriftDetected:
    """The agent's first drift, once the governor's PauseAgent naming it has arrived too."""

    async def both() -> c.DriftDetected | None:
        drift = tap.first(c.DriftDetected, agent_id=agent)
        pause = tap.first(c.PauseAgent, agent_id=agent)
        if drift and pause and drift[1].event_id in pause[1].cause_ids:
            return drift[1]  # type: ignore[no-any-return]
        return None

    return await eventually(both, 20, what=f"DriftDetected and PauseAgent for {agent}")


async def test_tokens_spike_from_helmctl_flags(rules_stack: RunningStack) -> None:
    agent = new_agent("tokens")
    flags = ("publish", "run", "--agent", agent, "--service", SERVICE, "--input-tokens", "400")
    async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
        warm = (*flags, "--output-tokens", "100", "--count", "20")
        spike = (*flags, "--output-tokens", "4000", "--run-id", f"{agent}-spike")
        for args in (warm, spike):
            assert (await helmctl(rules_stack, *args))[0] == 0
        drift = await drift_and_pause(tap, agent)
    assert (drift.rule, drift.metric, drift.observed) == ("tokens_spike", "tokens_per_run", 4400)
    assert (drift.baseline, drift.threshold, drift.window) == (500, 2500, 20)
    assert drift.evidence_run_ids == [f"{agent}-spike"]


async def test_low_confidence_for_three_runs_from_helmctl_flags(rules_stack: RunningStack) -> None:
    agent = new_agent("confidence")
    async with Tap(rules_stack, [c.TELEMETRY, c.DRIFT, c.CONTROL]) as tap:
        args = ("publish", "run", "--agent", agent, "--service", SERVICE)
        assert (await helmctl(rules_stack, *args, "--confidence", "0.4", "--count", "3"))[0] == 0
        drift = await drift_and_pause(tap, agent)
        runs = [m.run_id for _, m in tap.seen if isinstance(m, c.RunCompleted)]
    assert (drift.rule, drift.observed, drift.threshold) == ("low_confidence", 0.4, 0.55)
    assert len(drift.evidence_run_ids) == 3 and set(drift.evidence_run_ids) <= set(runs)


async def test_repeated_retries_from_a_plain_producer(rules_stack: RunningStack) -> None:
    agent = new_agent("retries")
    runs = [run(agent, retries=n) for n in (1, 0, 2, 0, 1)]
    async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
        await produce(rules_stack, runs)
        drift = await drift_and_pause(tap, agent)
    assert (drift.rule, drift.observed, drift.window) == ("repeated_retries", 3, 5)
    assert drift.evidence_run_ids == [runs[0]["run_id"], runs[2]["run_id"], runs[4]["run_id"]]


async def test_latency_spike_from_a_plain_producer(rules_stack: RunningStack) -> None:
    agent = new_agent("latency")
    runs = [run(agent, latency_ms=280.0 + i * 2) for i in range(20)]
    slow = run(agent, latency_ms=2000.0)
    async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
        await produce(rules_stack, [*runs, slow])
        drift = await drift_and_pause(tap, agent)
    assert (drift.rule, drift.metric, drift.observed) == ("latency_spike", "latency_ms", 2000.0)
    assert drift.baseline == 299.0 and drift.threshold == 897.0
    assert drift.evidence_run_ids == [slow["run_id"]]


async def test_cost_spike_from_a_helmctl_file(rules_stack: RunningStack, tmp_path: Path) -> None:
    agent = new_agent("cost")
    expensive = run(agent, cost=0.02)
    path = jsonl(tmp_path / "cost.jsonl", [*(run(agent) for _ in range(20)), expensive])
    async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
        assert (await helmctl(rules_stack, "publish", "--file", str(path)))[0] == 0
        drift = await drift_and_pause(tap, agent)
    assert (drift.rule, drift.metric, drift.observed, drift.baseline) == (
        "cost_spike",
        "cost",
        0.02,
        0.001,
    )
    assert drift.evidence_run_ids == [expensive["run_id"]]


async def test_error_rate_from_a_plain_producer(rules_stack: RunningStack) -> None:
    agent = new_agent("errors")
    failing = [run(agent, outcome="timeout", error="upstream timed out") for _ in range(8)]
    async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
        await produce(rules_stack, [*(run(agent) for _ in range(20)), *failing])
        drift = await drift_and_pause(tap, agent)
    assert (drift.rule, drift.metric, drift.window) == ("error_rate", "error_rate", 10)
    assert drift.observed == 0.6 and drift.baseline == 0.0 and drift.threshold == 0.5
    assert drift.evidence_run_ids == [r["run_id"] for r in failing[:6]]


async def test_a_healthy_stream_produces_no_drift_with_every_rule_on(
    rules_stack: RunningStack,
) -> None:
    agent, rng = new_agent("healthy"), random.Random(5)
    runs = [
        run(
            agent,
            input_tokens=rng.randint(300, 700),
            latency_ms=rng.uniform(200, 400),
            cost=rng.uniform(0.001, 0.002),
            confidence=rng.uniform(0.7, 0.99),
            retries=1 if i in (10, 30) else 0,
            outcome="timeout" if i in (20, 45) else "ok",
        )
        for i in range(60)
    ]
    store = Store(RedisSettings(url=rules_stack.redis_url))
    try:
        async with Tap(rules_stack, [c.DRIFT, c.CONTROL]) as tap:
            await produce(rules_stack, runs)

            async def counted() -> dict[str, Any] | None:
                metrics = await store.get_metrics(agent)
                return metrics if metrics.get("runs") == len(runs) else None

            metrics = await eventually(counted, 20, what="every run counted")
        assert metrics["drifts"] == 0 and metrics["failed"] == 2
        assert tap.first(c.DriftDetected, agent_id=agent) is None
        assert tap.first(c.PauseAgent, agent_id=agent) is None
    finally:
        await store.close()
