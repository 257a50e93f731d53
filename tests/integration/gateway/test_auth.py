"""Every change needs the operator token; with it, the command reaches ``helm.control``."""

from __future__ import annotations

import httpx
import pytest

from helm import contracts as c
from helm.state import AgentState, Anomaly, Control, Status
from helm.store import Store
from services.gateway.app import GatewayApp
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import AUTH, Tap, start_gateway

MUTATIONS = [
    ("POST", "/simulate/anomaly/classifier"),
    ("DELETE", "/simulate/anomaly/classifier"),
    ("POST", "/agents/classifier/pause"),
    ("POST", "/agents/classifier/resume"),
    ("POST", "/agents/classifier/clear-constraints"),
    ("POST", "/services/risk-ops/pause"),
    ("POST", "/services/risk-ops/resume"),
    ("POST", "/incidents/1-0/ack"),
    ("PUT", "/budgets"),
]


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
async def test_changes_refuse_a_missing_or_wrong_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    missing = await client.request(method, path)
    assert missing.status_code == 401, missing.text
    assert "operator token" in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.request(method, path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403, wrong.text
    assert "not the operator token" in wrong.json()["error"]


async def test_without_an_operator_token_changes_are_disabled_and_say_why(
    settings: GatewaySettings, seeded: Store
) -> None:
    app, stop, task = await start_gateway(settings.model_copy(update={"operator_token": None}))
    try:
        transport = httpx.ASGITransport(app=app.api)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            resp = await http.post("/agents/classifier/pause", headers=AUTH)
            assert resp.status_code == 401
            assert "HELM_GATEWAY_OPERATOR_TOKEN" in resp.json()["error"]
            assert (await http.get("/agents")).status_code == 200
    finally:
        stop.set()
        await task
        await app.stop()


async def test_pause_publishes_a_command_with_the_operator_as_actor(
    client: httpx.AsyncClient, control_tap: Tap
) -> None:
    headers = {**AUTH, "X-Helm-Operator": "alice"}
    resp = await client.post("/agents/classifier/pause", headers=headers, json={"reason": "drill"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["actor"] == "operator:alice"
    command = await control_tap.wait_for(c.PauseAgent, agent_id="classifier")
    assert isinstance(command, c.PauseAgent)
    assert (command.actor, command.reason) == ("operator:alice", "drill")


async def test_resume_and_clear_constraints_publish_commands(
    client: httpx.AsyncClient, control_tap: Tap, seeded: Store
) -> None:
    await seeded.set_status("classifier", Status(state=AgentState.PAUSED))
    assert (await client.post("/agents/classifier/resume", headers=AUTH)).status_code == 202
    resumed = await control_tap.wait_for(c.ResumeAgent, agent_id="classifier")
    assert resumed.actor.startswith("operator:token-")  # type: ignore[attr-defined]
    assert (await client.post("/agents/classifier/clear-constraints", headers=AUTH)).is_success
    cleared = await control_tap.wait_for(c.ConstrainAgent, agent_id="classifier")
    assert isinstance(cleared, c.ConstrainAgent)
    assert (cleared.batch_size, cleared.rate_limit_per_min, cleared.max_retries) == (None,) * 3


async def test_simulated_anomaly_is_stored_and_announced(
    client: httpx.AsyncClient, control_tap: Tap, seeded: Store
) -> None:
    resp = await client.post(
        "/simulate/anomaly/classifier", headers=AUTH, json={"duration_s": 5, "batch_multiplier": 3}
    )
    assert resp.status_code == 202, resp.text
    anomaly = await seeded.get_anomaly("classifier")
    assert isinstance(anomaly, Anomaly) and anomaly.batch_multiplier == 3
    injected = await control_tap.wait_for(c.InjectAnomaly, agent_id="classifier")
    assert isinstance(injected, c.InjectAnomaly) and injected.duration_s == 5
    assert (await client.delete("/simulate/anomaly/classifier", headers=AUTH)).status_code == 202
    await control_tap.wait_for(c.ClearAnomaly, agent_id="classifier")
    assert await seeded.get_anomaly("classifier") is None


async def test_service_pause_and_resume_reach_every_agent(
    client: httpx.AsyncClient, control_tap: Tap, seeded: Store
) -> None:
    assert (await client.post("/services/risk-ops/pause", headers=AUTH)).status_code == 202
    for agent_id in ("classifier", "processor"):
        await control_tap.wait_for(c.PauseAgent, agent_id=agent_id)
        await seeded.set_control(agent_id, Control(paused=True))
    assert (await client.post("/services/risk-ops/resume", headers=AUTH)).status_code == 202
    for agent_id in ("classifier", "processor"):
        await control_tap.wait_for(c.ResumeAgent, agent_id=agent_id)


async def test_read_token_closes_reads_but_not_health(
    settings: GatewaySettings, gateway: GatewayApp, seeded: Store
) -> None:
    from pydantic import SecretStr

    closed = settings.model_copy(update={"read_token": SecretStr("reader")})
    app, stop, task = await start_gateway(closed)
    try:
        transport = httpx.ASGITransport(app=app.api)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (await http.get("/state")).status_code == 401
            bad = await http.get("/state", headers={"Authorization": "Bearer x"})
            assert bad.status_code == 403
            ok = await http.get("/state", headers={"Authorization": "Bearer reader"})
            assert ok.status_code == 200
            assert (await http.get("/state", headers=AUTH)).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
            refused = await http.post(
                "/agents/classifier/pause", headers={"Authorization": "Bearer reader"}
            )
            assert refused.status_code == 403
    finally:
        stop.set()
        await task
        await app.stop()
