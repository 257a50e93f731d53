"""``make soak``: a sustained healthy load on the whole stack, reporting what drifts over time.

Starts ``helmctl up`` (the embedded stack, or real Kafka/Redis when ``HELM_KAFKA_BOOTSTRAP`` /
``HELM_REDIS_URL`` are set), then publishes healthy ``RunCompleted`` events for many agents at a
steady rate for the whole duration, sampling every ``--sample`` seconds: the rate achieved, the
consumer lag of every group (from the services' /metrics), the resident memory of every process
(helmctl, each service, each worker, the broker, Redis) and the drift events seen (on a healthy
stream every one is a false positive). Writes ``bench/results/soak.json`` and ``soak.md``. Memory
is judged flat when none of Helm's own processes grows by more than 10 % after the first minute;
the broker's and Redis's growth is reported beside it.

    python -m bench.soak --minutes 10 --agents 100 --rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from helm import contracts as c
from helm.bus import Bus
from helm.settings import KafkaSettings
from tests.e2e.stack import RunningStack, start_stack

RESULTS = Path(__file__).parent / "results"
LAG = re.compile(r'^helm_bus_consumer_lag_messages\{group="([^"]+)"\} ([0-9.e+]+)$', re.M)


def healthy_run(agent: str, rng: random.Random) -> c.RunCompleted:
    return c.RunCompleted(
        agent_id=agent,
        service_id="soak",
        model="claude-haiku-4-5",
        provider="offline",
        input_tokens=int(rng.gauss(600, 60)),
        output_tokens=int(rng.gauss(150, 20)),
        latency_ms=max(5.0, rng.gauss(400, 60)),
        ttft_ms=max(1.0, rng.gauss(120, 20)),
        confidence=min(1.0, max(0.6, rng.gauss(0.85, 0.05))),
        cost=0.0013,
    )


class Load:
    """Publishes at ``rate`` events/s in 50 ms ticks; counts what the broker acknowledged."""

    def __init__(self, bus: Bus, agents: list[str], rate: float) -> None:
        self.bus, self.agents, self.rate = bus, agents, rate
        self.sent = 0
        self.rng = random.Random(42)

    async def run(self, stop: asyncio.Event) -> None:
        tick, owed, last = 0.05, 0.0, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            owed += (now - last) * self.rate
            last = now
            n = int(owed)
            owed -= n
            if n:
                batch = [
                    healthy_run(self.agents[(self.sent + i) % len(self.agents)], self.rng)
                    for i in range(n)
                ]
                await self.bus.publish_many(c.TELEMETRY, batch)
                self.sent += n
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - now)))


class Drifts:
    def __init__(self) -> None:
        self.items: list[c.DriftDetected] = []

    async def keep(self, d: c.DriftDetected) -> None:
        if d.service_id == "soak":
            self.items.append(d)


# Processes of the embedded stack that are not Helm's own: their memory is reported, not judged
# (the in-memory broker keeps every message it was sent; it grows with the data by design).
INFRASTRUCTURE = {"tansu": "broker", "valkey-server": "redis", "redis-server": "redis"}


def process_name(proc: psutil.Process, services: dict[int, str]) -> str:
    if proc.pid in services:
        return services[proc.pid]
    cmd = " ".join(proc.cmdline())
    for needle, name in INFRASTRUCTURE.items():
        if needle in cmd:
            return name
    if "services.worker" in cmd or " worker " in f"{cmd} ":
        return f"worker-{proc.pid}"
    return f"{Path(proc.cmdline()[0]).name}-{proc.pid}"


def memory(stack: RunningStack) -> dict[str, float]:
    """Resident memory (MB) of helmctl and every process under it, by name."""
    services = {pid: name for name, pid in stack.pids().items() if pid}
    out: dict[str, float] = {}
    try:
        root = psutil.Process(stack.proc.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for proc in procs:
        try:
            name = "helmctl" if proc.pid == root.pid else process_name(proc, services)
            out[name] = round(proc.memory_info().rss / 1_048_576, 1)
        except psutil.NoSuchProcess:
            continue
    return out


async def sample(stack: RunningStack, client: httpx.AsyncClient) -> dict[str, Any]:
    lag: dict[str, float] = {}
    for ep in stack.endpoints:
        try:
            text = (await client.get(f"http://{ep['target']}/metrics", timeout=5)).text
        except httpx.HTTPError:
            continue
        for group, value in LAG.findall(text):
            lag[group] = max(lag.get(group, 0.0), float(value))
    return {"memory_mb": memory(stack), "lag": lag}


def growth(samples: list[dict[str, Any]], after_s: float = 60.0) -> dict[str, float]:
    """Growth of each process's memory after the first minute, as a fraction."""
    later = [s for s in samples if s["t"] >= after_s]
    if len(later) < 2:
        return {}
    first, last = later[0]["memory_mb"], later[-1]["memory_mb"]
    return {k: round((last[k] - first[k]) / first[k], 3) for k in first if k in last and first[k]}


def helm_own(growths: dict[str, float]) -> dict[str, float]:
    return {k: g for k, g in growths.items() if k not in INFRASTRUCTURE.values()}


async def soak(minutes: float, agents: int, rate: float, every: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="helm-soak-"))
    stack = start_stack(workdir)
    settings = KafkaSettings(
        bootstrap=stack.kafka_bootstrap, topic_prefix=stack.topic_prefix, linger_ms=10
    )
    bus = Bus(settings, "soak")
    await bus.start()
    load = Load(bus, [f"soak-{i:03d}" for i in range(agents)], rate)
    drifts, stop = Drifts(), asyncio.Event()
    watcher = bus.consumer([c.DRIFT], None, drifts.keep, from_latest=True, dead_letter=False)
    tasks = [asyncio.create_task(watcher.run(stop)), asyncio.create_task(load.run(stop))]
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    try:
        async with httpx.AsyncClient() as client:
            while time.monotonic() - start < minutes * 60:
                await asyncio.sleep(every)
                t = time.monotonic() - start
                s = await sample(stack, client)
                samples.append(
                    {"t": round(t, 1), "sent": load.sent, "rate": round(load.sent / t, 1), **s}
                )
                print(json.dumps(samples[-1]), flush=True)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.stop()
        stack.stop()
    grown = growth(samples)
    own = helm_own(grown)
    return {
        "minutes": minutes,
        "agents": agents,
        "target_rate": rate,
        "achieved_rate": samples[-1]["rate"] if samples else 0.0,
        "events": load.sent,
        "drift_false_positives": len(drifts.items),
        "memory_growth_after_first_minute": own,
        "infrastructure_growth_after_first_minute": {
            k: g for k, g in grown.items() if k not in own
        },
        "memory_flat": all(g <= 0.10 for g in own.values()) if own else None,
        "max_lag": max((max(s["lag"].values(), default=0.0) for s in samples), default=0.0),
        "samples": samples,
    }


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Helm soak report",
        "",
        f"{report['minutes']} minutes, {report['agents']} agents, target {report['target_rate']} runs/s, "
        f"achieved {report['achieved_rate']} runs/s ({report['events']} events).",
        "",
        f"- drift events on the healthy stream (false positives): {report['drift_false_positives']}",
        f"- largest consumer lag seen: {report['max_lag']:.0f} messages",
        f"- memory growth of Helm's processes after the first minute: "
        f"{report['memory_growth_after_first_minute']} (flat, none above 10 %: {report['memory_flat']})",
        f"- the embedded broker and Redis (reported, not judged; the in-memory broker keeps every "
        f"message): {report['infrastructure_growth_after_first_minute']}",
        "",
        "| t (s) | rate | lag (max) | memory MB |",
        "|---|---|---|---|",
    ]
    for s in report["samples"]:
        lines.append(
            f"| {s['t']} | {s['rate']} | {max(s['lag'].values(), default=0):.0f} | {s['memory_mb']} |"
        )
    (RESULTS / "soak.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    report = asyncio.run(soak(args.minutes, args.agents, args.rate, args.sample))
    write(report)
    print((RESULTS / "soak.md").read_text())


if __name__ == "__main__":
    main()
