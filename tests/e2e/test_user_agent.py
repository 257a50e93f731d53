"""An agent a user writes with ``@client.agent`` runs under ``helmctl worker``, answers a chat
query through the gateway, and its runs appear on ``helm.telemetry`` without telemetry code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helm import contracts as c
from tests.e2e.stack import HELMCTL, RunningStack
from tests.e2e.test_anomaly_flow import Tap
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def user_worker(running_stack: RunningStack, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "HELM_KAFKA_BOOTSTRAP": running_stack.kafka_bootstrap,
        "HELM_REDIS_URL": running_stack.redis_url,
        "HELM_WORKER_OPS_PORT": "0",
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [str(HELMCTL), "worker", "tests.e2e.user_agents:client", "--agent", "triage"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        print((tmp_path / "worker.log").read_text()[-2000:], file=sys.stderr)
        assert code == 0


async def test_a_user_agent_answers_through_the_gateway_and_reports_telemetry(
    running_stack: RunningStack, user_worker: subprocess.Popen[bytes]
) -> None:
    async with httpx.AsyncClient(base_url=running_stack.base_url, timeout=30) as client:

        async def registered() -> bool:
            return (await client.get("/agents/triage")).status_code == 200

        await eventually(registered, 60, 0.2, what="the user agent registered")
        state = (await client.get("/state")).json()
        services = {s["id"]: s for s in state["hierarchy"]["services"]}
        assert "triage" in services["support"]["agents"]

        async with Tap(running_stack, [c.TELEMETRY]) as tap:
            resp = await client.post("/agent/triage/query", json={"query": "My invoice is wrong"})
            assert resp.status_code == 200, resp.text
            answer = resp.json()
            assert "My invoice is wrong" in answer["answer"]
            assert answer["provider"] == "offline" and answer["input_tokens"] > 0

            async def reported() -> bool:
                return tap.first(c.RunCompleted, agent_id="triage") is not None

            await eventually(reported, 10, what="the run on helm.telemetry")
            _, run = tap.first(c.RunCompleted, agent_id="triage")  # type: ignore[misc]
            assert run.service_id == "support" and run.confidence == 0.9 and run.task_id
            assert run.input_tokens == answer["input_tokens"]
