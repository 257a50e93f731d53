"""Every crash the fuzz suite found, with the exact input that caused it, kept fixed.

Events that decoded, then made a handler fail five times (three seconds of retries each) before
being dead-lettered, are now refused by the contract at once, with a reason naming the field;
the gateway's 500s are now 4xx JSON errors; the bus no longer dies on a dead letter it cannot
send or on a producer that forgot where its topics live.
"""

from __future__ import annotations

import asyncio
import base64
import logging

import httpx
import pytest

from helm import codec
from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings, RedisSettings
from services.gateway.app import GatewayApp
from services.observer.app import build_app as observer
from services.observer.settings import ObserverSettings
from services.worker.control import ControlState
from tests.fuzz.harness import flood, tap
from tests.fuzz.strategies import Payload
from tests.integration.services import common, running
from tests.waiting import eventually

H = "h" * 3000
DRIFT = '{"type": "DriftDetected", "agent_id": "classifier", "observed": 1.0, "threshold": 0.5, "window": 3'

# (topic, exact payload, the field the refusal must name)
REFUSED = [
    # the governor built a PauseAgent whose reason quoted the rule: over 2000 characters
    (c.DRIFT, DRIFT + f', "rule": "{H}", "metric": "tokens"}}', "rule"),
    # ... and an incident whose message quoted the metric: over 4000 characters
    (c.DRIFT, DRIFT + f', "rule": "tokens_spike", "metric": "{H}{H}"}}', "metric"),
    # the service governor escalated service "": ServiceEscalated(service_id="") is invalid
    (
        c.ESCALATIONS,
        '{"type": "AgentEscalated", "agent_id": "classifier", "service_id": ""}',
        "service_id",
    ),
    # the organisation governor recorded an incident about organisation ""
    (
        c.ESCALATIONS,
        '{"type": "ServiceEscalated", "service_id": "risk-ops", "org_id": ""}',
        "org_id",
    ),
    # ... quoting a reason of any length in a message capped at 4000 characters
    (
        c.ESCALATIONS,
        f'{{"type": "ServiceEscalated", "service_id": "s", "reason": "{H}{H}"}}',
        "reason",
    ),
    # an operator's note quoted actor and reason: over 4000 characters
    (
        c.CONTROL,
        f'{{"type": "PauseAgent", "agent_id": "processor", "actor": "operator:{H}"}}',
        "actor",
    ),
    # the observer's drift for a run of service "" was invalid
    (
        c.TELEMETRY,
        '{"agent_id": "classifier", "service_id": "", "input_tokens": 99999}',
        "service_id",
    ),
    # a worker divided by a rate of 5e-324 / 60 == 0.0 runs per second
    (
        c.CONTROL,
        '{"type": "ConstrainAgent", "agent_id": "classifier", "rate_limit_per_min": 5e-324}',
        "rate_limit_per_min",
    ),
    # NaN and infinities passed every bound and reached medians, thresholds and liveness
    (c.DRIFT, DRIFT.replace("1.0", "NaN") + ', "rule": "r", "metric": "m"}', "observed"),
    (c.TELEMETRY, '{"agent_id": "classifier", "latency_ms": Infinity}', "latency_ms"),
    (c.TELEMETRY, '{"agent_id": "classifier", "cost": 1e400}', "cost"),
    (c.HEARTBEATS, '{"agent_id": "a", "instance_id": "i", "pid": 1, "ts": NaN}', "ts"),
]


@pytest.mark.parametrize(("topic", "payload", "field"), REFUSED)
def test_the_contract_refuses_what_crashed_a_handler(topic: str, payload: str, field: str) -> None:
    with pytest.raises(codec.DecodeError, match=field):
        codec.decode(topic, payload.encode())


def test_the_slowest_rate_allowed_still_gives_a_finite_wait() -> None:
    state = ControlState("classifier")
    state.apply(c.ConstrainAgent(agent_id="classifier", rate_limit_per_min=0.001))
    state.bucket.tokens = 0.0
    assert 0 < state.bucket.wait_time() <= 60_000


async def test_a_near_limit_payload_is_dead_lettered_not_fatal(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000,000 bytes of garbage (under the limit): its base64 letter used to exceed the
    producer's request size, and the failed dead-letter killed the observer's consumer."""
    caplog.set_level(logging.ERROR, logger="helm.bus")
    obs = observer(ObserverSettings(**common(kafka_settings, redis_settings)))
    garbage = b"\xff" * 1_000_000
    async with tap(kafka_settings) as letters, flood(kafka_settings) as f, running(obs):
        await f.send(c.TELEMETRY, [Payload(garbage, "bytes")])
        letter = await eventually(lambda: _first(letters.items), 60, what="its dead letter")
    assert "payload truncated to its first 524,288 bytes" in letter.reason
    assert base64.b64decode(letter.payload_b64) == garbage[:524_288]


async def test_a_new_topic_does_not_make_the_producer_forget_the_others(
    kafka_settings: KafkaSettings,
) -> None:
    """aiokafka tracked only the new topic's metadata: the dead letters queued meanwhile waited
    for a leader that never came and failed after 40 s, killing the gateway's reply loop."""
    bus = Bus(kafka_settings, "fuzz-metadata")
    await bus.ensure_topics(c.FIXED_TOPICS)  # known to the producer from its first metadata
    await bus.start()
    try:
        await bus.publish_raw(c.DEADLETTER, b"{}", "k")
        await bus.ensure_topics([c.tasks_topic("late")])
        sends = [bus.publish_raw(c.DEADLETTER, b"{}", "k") for _ in range(50)]
        sends.append(
            bus.publish(c.tasks_topic("late"), c.TaskRequested(agent_id="late", input="?"))
        )
        await asyncio.wait_for(asyncio.gather(*sends), 15)
    finally:
        await bus.stop()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/incidents?before=0-0", 200),  # Redis: "invalid end ID for the interval"
        ("GET", "/incidents?before=18446744073709551616-0", 422),  # above a stream id's range
        ("GET", "/incidents?before=%D9%A1-%D9%A1", 422),  # Arabic-Indic digits match \d
        ("POST", "/incidents/0-19000000000000000000/ack", 404),
        ("POST", "/incidents/%D9%A1-%D9%A1/ack", 422),
    ],
)
async def test_incident_ids_out_of_redis_range_are_client_errors(
    gateway: GatewayApp, method: str, path: str, status: int
) -> None:
    from tests.integration.gateway.conftest import AUTH

    transport = httpx.ASGITransport(app=gateway.api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.request(method, path, headers=AUTH)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["error"]


async def test_a_budget_id_with_a_colon_is_refused_and_budgets_stay_readable(
    gateway: GatewayApp,
) -> None:
    """``{"scope": "service", "scope_id": "\\u0000:x"}`` was stored as budget
    ``service:\\x00:x:daily``, which no listing could parse again: every later GET and PUT of
    /budgets answered 500."""
    from tests.integration.gateway.conftest import AUTH

    transport = httpx.ASGITransport(app=gateway.api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        bad = {"amount": 5, "scope": "service", "scope_id": "\x00:x"}
        refused = await http.put("/budgets", json=bad, headers=AUTH)
        listed = await http.get("/budgets")
    assert refused.status_code == 422 and "scope_id" in refused.json()["error"]
    assert listed.status_code == 200


async def _first(items: list[c.DeadLettered]) -> c.DeadLettered | None:
    return items[0] if items else None
