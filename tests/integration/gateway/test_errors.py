"""Every error is JSON with a message that says what is wrong, and the right status code."""

from __future__ import annotations

import socket

import httpx

from helm.settings import RedisSettings
from helm.state import AgentState, Control, Status
from helm.store import Store
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import AUTH


async def test_unknown_agent_and_service_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/agents/ghost"),
        ("GET", "/agents/ghost/instances"),
        ("POST", "/agents/ghost/pause"),
        ("POST", "/simulate/anomaly/ghost"),
        ("GET", "/services/ghost"),
        ("POST", "/services/ghost/pause"),
        ("POST", "/agent/ghost/query"),
        ("POST", "/incidents/99-0/ack"),
    ]:
        body = {"query": "hi"} if path.endswith("/query") else None
        resp = await client.request(method, path, headers=AUTH, json=body)
        assert resp.status_code == 404, (path, resp.text)
        assert "ghost" in resp.json()["error"] or "99-0" in resp.json()["error"]


async def test_bad_bodies_are_422_with_details_and_a_message(client: httpx.AsyncClient) -> None:
    cases = [
        ("/simulate/anomaly/classifier", {"duration_s": -1}),
        ("/simulate/anomaly/classifier", {"unknown": 1}),
        ("/agent/classifier/query", {"query": ""}),
        ("/agent/classifier/query", {}),
    ]
    for path, body in cases:
        resp = await client.post(path, headers=AUTH, json=body)
        assert resp.status_code == 422, (path, resp.text)
        data = resp.json()
        assert data["error"].startswith("invalid request: ")
        assert isinstance(data["detail"], list) and data["detail"]
    bad_json = await client.post(
        "/simulate/anomaly/classifier",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert bad_json.status_code == 422
    budget = await client.put("/budgets", headers=AUTH, json={"amount": -5})
    assert budget.status_code == 422 and "amount" in budget.json()["error"]
    assert (await client.get("/incidents?limit=0")).status_code == 422


async def test_impossible_transitions_are_409(client: httpx.AsyncClient, seeded: Store) -> None:
    resume = await client.post("/agents/classifier/resume", headers=AUTH)
    assert resume.status_code == 409
    assert "healthy, not paused or degraded" in resume.json()["error"]
    await seeded.set_control("classifier", Control(paused=True))
    await seeded.set_status("classifier", Status(state=AgentState.PAUSED))
    pause = await client.post("/agents/classifier/pause", headers=AUTH)
    assert pause.status_code == 409 and "already paused" in pause.json()["error"]
    clear = await client.delete("/simulate/anomaly/processor", headers=AUTH)
    assert clear.status_code == 409 and "no anomaly" in clear.json()["error"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_unreachable_redis_is_503_naming_it(settings: GatewaySettings) -> None:
    dead = RedisSettings(url=f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=0.5)
    app = build_app(settings.model_copy(update={"redis": dead}))
    await app.bus.start()  # Kafka is up; Redis is not (start() would refuse, as it should)
    try:
        transport = httpx.ASGITransport(app=app.api)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            state = await http.get("/state")
            assert state.status_code == 503
            assert state.json()["error"].startswith("Redis is unreachable")
            pause = await http.post("/agents/classifier/pause", headers=AUTH)
            assert pause.status_code == 503
            health = await http.get("/healthz")
            assert health.status_code == 503
            assert health.json()["error"] == "redis unreachable"
            assert health.json()["checks"]["kafka"] == "ok"
    finally:
        await app.bus.stop()
        await app.store.close()


async def test_chat_timeout_is_504_with_a_clear_message(client: httpx.AsyncClient) -> None:
    resp = await client.post("/agent/classifier/query", headers=AUTH, json={"query": "hello?"})
    assert resp.status_code == 504
    assert "did not answer within 3 s" in resp.json()["error"]


async def test_unknown_routes_are_json_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/nope")
    assert resp.status_code == 404 and resp.json() == {"error": "Not Found"}
