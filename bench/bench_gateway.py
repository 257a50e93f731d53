"""``GET /state`` with 1,000 agents against the same gateway answering a constant JSON body.

The gateway runs as its own process (as in production) on the embedded broker and Redis; the
constant route returns a captured ``/state`` of the same size, so the ratio is the cost of
building the state from Redis. Load: 16 concurrent keep-alive clients from this process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import Line, ratio_line
from helm.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from helm.settings import RedisSettings
from helm.state import AgentMeta, Status
from helm.store import Store

AGENTS = 1000
SECONDS = 5.0
CLIENTS = 16


async def seed(redis_url: str, prefix: str) -> None:
    store = Store(RedisSettings(url=redis_url, prefix=prefix))
    services = [f"svc-{i}" for i in range(20)]
    await store.put_hierarchy(
        {
            "org": {"id": "acme", "name": "Acme"},
            "services": [
                {"id": s, "name": s, "agents": [f"agent-{a}" for a in range(AGENTS) if a % 20 == i]}
                for i, s in enumerate(services)
            ],
        }
    )
    for a in range(AGENTS):
        agent = f"agent-{a}"
        await store.put_meta(AgentMeta(agent_id=agent, service_id=services[a % 20], org_id="acme"))
        await store.set_status(agent, Status())
        metrics = {
            "runs": 100 + a,
            "tokens_per_run": 700,
            "confidence": 0.9,
            "latency_p95_ms": 120.0,
        }
        await store.set_metrics(agent, metrics, {"ts": time.time(), "tokens": 700})
    await store.close()


async def load(url: str) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of ``url`` under CLIENTS concurrent clients."""
    latencies: list[float] = []
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=CLIENTS), timeout=30
    ) as client:
        await client.get(url)
        deadline = time.perf_counter() + SECONDS

        async def one() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.get(url)
                response.raise_for_status()
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1]


async def wait_up(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not come up")


async def run() -> list[Line]:
    broker, redis = EmbeddedBroker(), EmbeddedRedis()
    broker.start()
    redis.start()
    prefix, port = f"bench:{uuid.uuid4().hex[:8]}:", free_port()
    base = f"http://127.0.0.1:{port}"
    constant = Path(tempfile.mkstemp(suffix=".json")[1])
    proc: asyncio.subprocess.Process | None = None
    try:
        await seed(redis.url, prefix)
        env = {
            **os.environ,
            "HELM_KAFKA_BOOTSTRAP": broker.bootstrap,
            "HELM_REDIS_URL": redis.url,
            "HELM_REDIS_PREFIX": prefix,
            "HELM_GATEWAY_PORT": str(port),
            "HELM_BENCH_CONSTANT_FILE": str(constant),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.gateway_server", env=env
        )
        await wait_up(base)
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{base}/state")).content
        await asyncio.to_thread(constant.write_bytes, body)
        state_rps, state_p99 = await load(f"{base}/state")
        const_rps, const_p99 = await load(f"{base}/_constant")
    finally:
        if proc is not None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        broker.stop()
        redis.stop()
        await asyncio.to_thread(constant.unlink, True)
    return [
        ratio_line(
            f"gateway GET /state rps, {AGENTS} agents, vs constant body",
            state_rps,
            const_rps,
            "req/s",
            0.5,
            state_p99_ms=round(state_p99, 1),
            constant_p99_ms=round(const_p99, 1),
            body_bytes=len(body),
            clients=CLIENTS,
        )
    ]


if __name__ == "__main__":
    for line in asyncio.run(run()):
        print(line)
