"""The REST API as a client sees it: state, incidents, budgets, chat, OpenAPI, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from helm import contracts as c
from helm.bus import Bus
from helm.state import AgentMeta, ScopeState, ScopeStatus
from helm.store import Store
from services.gateway.app import GatewayApp
from tests.integration.gateway.conftest import AUTH, Tap
from tests.waiting import eventually

XSS = "<img src=x onerror=alert(1)>"


async def _incident(store: Store, **fields: object) -> None:
    base: dict[str, object] = {"scope_id": "classifier", "message": "m"}
    await store.record_incident(c.IncidentRecorded.model_validate({**base, **fields}))


async def test_state_has_hierarchy_agents_and_incidents(
    client: httpx.AsyncClient, seeded: Store
) -> None:
    await _incident(seeded, kind="paused", state_to="paused", message="drift")
    data = (await client.get("/state")).json()
    assert data["hierarchy"]["org"]["id"] == "acme"
    assert data["org"]["org_id"] == "acme" and data["org"]["status"]["state"] == "healthy"
    assert set(data["agents"]) == {"classifier", "processor"}
    assert data["agents"]["classifier"]["status"]["state"] == "healthy"
    assert data["incidents"][0]["incident"]["message"] == "drift"
    assert data["last_intervention"]["incident"]["kind"] == "paused"
    service = (await client.get("/services/risk-ops")).json()
    assert service["name"] == "Risk operations" and len(service["agents"]) == 2


async def test_incident_text_is_returned_as_text(client: httpx.AsyncClient, seeded: Store) -> None:
    await _incident(seeded, message=XSS)
    resp = await client.get("/incidents")
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["incidents"][0]["incident"]["message"] == XSS


async def test_incidents_page_filter_and_acknowledge(
    client: httpx.AsyncClient, seeded: Store
) -> None:
    for i in range(7):
        severity = "critical" if i % 2 else "info"
        await _incident(seeded, message=f"n{i}", severity=severity, scope_id=f"a{i % 3}")
    first = (await client.get("/incidents", params={"limit": 3})).json()
    assert [i["incident"]["message"] for i in first["incidents"]] == ["n6", "n5", "n4"]
    second = (
        await client.get("/incidents", params={"limit": 3, "before": first["next_before"]})
    ).json()
    assert [i["incident"]["message"] for i in second["incidents"]] == ["n3", "n2", "n1"]
    critical = (await client.get("/incidents", params={"severity": "critical"})).json()
    assert [i["incident"]["message"] for i in critical["incidents"]] == ["n5", "n3", "n1"]
    assert critical["next_before"] is None
    scoped = (await client.get("/incidents", params={"scope_id": "a0"})).json()
    assert {i["incident"]["message"] for i in scoped["incidents"]} == {"n0", "n3", "n6"}
    target = first["incidents"][0]["id"]
    ack = await client.post(f"/incidents/{target}/ack", headers=AUTH, json={"note": "on it"})
    assert ack.status_code == 200 and ack.json()["note"] == "on it"
    again = await client.post(f"/incidents/{target}/ack", headers=AUTH)
    assert again.json()["ts"] == ack.json()["ts"]  # the first acknowledgement stands
    shown = (await client.get("/incidents", params={"limit": 1})).json()["incidents"][0]
    assert shown["ack"]["actor"].startswith("operator:")


async def test_budgets_are_set_and_shown(client: httpx.AsyncClient) -> None:
    put = await client.put(
        "/budgets",
        headers=AUTH,
        json={"scope": "agent", "scope_id": "classifier", "period": "hourly", "amount": 1000},
    )
    assert put.status_code == 200, put.text
    budgets = (await client.get("/budgets")).json()
    mine = next(b for b in budgets if b["budget_id"] == "agent:classifier:hourly")
    assert (mine["limit"], mine["used"]) == (1000, 0)
    assert 0 < mine["resets_in_s"] <= 3600


@pytest.fixture
async def answerer(kafka_settings: object, gateway: GatewayApp) -> AsyncIterator[None]:
    """A tiny fake worker: answers every query to ``classifier`` by echoing it."""
    bus: Bus = gateway.bus
    stop = asyncio.Event()

    async def answer(task: c.TaskRequested) -> None:
        assert task.request_id is not None
        await bus.publish(
            c.REPLIES,
            c.TaskAnswered(
                request_id=task.request_id,
                task_id=task.task_id,
                agent_id=task.agent_id,
                output=f"echo: {task.input}",
                input_tokens=3,
                output_tokens=4,
            ),
        )

    await bus.ensure_topics([c.tasks_topic("classifier")])
    consumer = bus.consumer([c.tasks_topic("classifier")], "fake-worker", answer)
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(consumer.ready.wait(), 15)
    try:
        yield
    finally:
        stop.set()
        await task


async def test_chat_relays_the_answer(client: httpx.AsyncClient, answerer: None) -> None:
    resp = await client.post("/agent/classifier/query", headers=AUTH, json={"query": XSS})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["answer"] == f"echo: {XSS}"
    assert (data["outcome"], data["output_tokens"]) == ("ok", 4)


async def test_chat_is_rate_limited_per_client(
    client: httpx.AsyncClient, gateway: GatewayApp
) -> None:
    gateway.gw.limiter.burst = 1.0
    gateway.gw.limiter.rate = 1 / 60
    first = await client.post("/agent/ghost/query", json={"query": "a"})
    assert first.status_code == 404  # counted, then refused as unknown
    limited = await client.post("/agent/ghost/query", json={"query": "b"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    other = await client.post("/agent/ghost/query", headers=AUTH, json={"query": "c"})
    assert other.status_code == 404  # another client (by token) has its own bucket


async def test_openapi_schema_is_valid(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    validate(schema)
    paths = schema["paths"]
    for path in [
        "/state",
        "/simulate/anomaly/{agent_id}",
        "/agent/{agent_id}/query",
        "/agents/{agent_id}/pause",
        "/incidents",
        "/budgets",
        "/healthz",
    ]:
        assert path in paths
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert "QueryRequest" in schema["components"]["schemas"]


async def test_health_metrics_and_dashboard(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.json() == {"status": "ok", "checks": {"redis": "ok", "kafka": "ok"}}
    await client.get("/agents/classifier")
    text = (await client.get("/metrics")).text
    assert (
        'helm_gateway_http_requests_total{method="GET",route="/agents/{agent_id}",status="200"}'
        in text
    )
    assert "helm_gateway_ws_clients" in text and "helm_bus_published_messages_total" in text
    page = await client.get("/")
    assert page.status_code == 200 and "/static/vendor/uPlot.iife.min.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await client.get("/static/app.js")
    assert "Simulate anomaly" in script.text and "innerHTML" not in script.text
    vendor = await client.get("/static/vendor/uPlot.iife.min.js")
    assert vendor.status_code == 200, "dashboard assets missing: run `make dashboard`"


async def test_an_organisation_budget_without_an_id_is_the_hierarchys_organisation(
    client: httpx.AsyncClient,
) -> None:
    put = await client.put("/budgets", headers=AUTH, json={"period": "daily", "amount": 5000})
    assert put.status_code == 200, put.text
    ids = [b["budget_id"] for b in (await client.get("/budgets")).json()]
    assert "org:acme:daily" in ids


async def test_the_kill_switch_pauses_every_agent_through_the_governor(
    client: httpx.AsyncClient, control_tap: Tap, seeded: Store
) -> None:
    assert (await client.post("/org/pause", json={"reason": "incident 42"})).status_code == 401
    resp = await client.post("/org/pause", headers=AUTH, json={"reason": "incident 42"})
    assert resp.status_code == 202, resp.text
    cmd = await control_tap.wait_for(c.PauseAgent, agent_id=c.EVERY_AGENT)
    assert cmd.reason == "incident 42" and cmd.actor.startswith("operator")  # type: ignore[attr-defined]
    await seeded.set_scope_status("org", "acme", ScopeStatus(state=ScopeState.PAUSED))
    again = await client.post("/org/pause", headers=AUTH)
    assert again.status_code == 409 and "already engaged" in again.json()["error"]
    assert (await client.post("/org/resume", headers=AUTH)).status_code == 202


async def test_state_shows_an_engaged_kill_switch(client: httpx.AsyncClient, seeded: Store) -> None:
    engaged = ScopeStatus(state=ScopeState.PAUSED, reason="kill switch engaged: drill", actor="op")
    await seeded.set_scope_status("org", "acme", engaged)
    org = (await client.get("/state")).json()["org"]
    assert (org["org_id"], org["name"]) == ("acme", "Acme")
    assert org["status"]["state"] == "paused" and org["status"]["reason"].endswith("drill")
    assert org["status"]["actor"] == "op" and org["status"]["since"] == engaged.since


async def test_a_service_shows_its_governor_state(client: httpx.AsyncClient, seeded: Store) -> None:
    await seeded.set_scope_status(
        "service", "risk-ops", ScopeStatus(state=ScopeState.CONTAINED, reason="r")
    )
    body = (await client.get("/services/risk-ops")).json()
    assert body["status"]["state"] == "contained"


async def test_state_lists_every_services_status(client: httpx.AsyncClient, seeded: Store) -> None:
    """Services named by the hierarchy or only by an agent; healthy until a governor says not."""
    await seeded.put_meta(AgentMeta(agent_id="loner", service_id="ad-hoc", org_id="acme"))
    assert {s: v["state"] for s, v in (await client.get("/state")).json()["services"].items()} == {
        "risk-ops": "healthy",
        "ad-hoc": "healthy",
    }
    paused = ScopeStatus(state=ScopeState.PAUSED, reason="paused by operator: drill", actor="op")
    await seeded.set_scope_status("service", "risk-ops", paused)

    async def shown() -> dict[str, Any] | None:  # /state is rebuilt at most once a second
        services: dict[str, Any] = (await client.get("/state")).json()["services"]
        return services if services["risk-ops"]["state"] == "paused" else None

    services = await eventually(shown, what="/state showing the paused service")
    assert services["risk-ops"]["state"] == "paused" and services["risk-ops"]["actor"] == "op"
    assert services["risk-ops"]["reason"] == "paused by operator: drill"
    assert services["ad-hoc"]["state"] == "healthy"
