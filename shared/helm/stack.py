"""``helmctl up``: the whole of Helm on one machine, no Docker, no root.

Starts the embedded broker and Redis (unless ``HELM_KAFKA_BOOTSTRAP`` / ``HELM_REDIS_URL`` point at
real ones), then the services as supervised processes: runtime, observer, governor and the
gateway. The runtime starts, replaces and autoscales the worker processes (``manage_workers``).
Prints the dashboard URL once the gateway answers and the configured workers registered, and
keeps a state file (URLs, token, pids, metrics endpoints, the workers' read from Redis as they
come and go) for scripts and tests. Ctrl+C or SIGTERM stops the services in reverse order (the
runtime drains its workers), then the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from helm.config import load_config
from helm.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from helm.runner import install_stop
from helm.settings import CommonSettings, RedisSettings, load
from helm.store import Store
from helm.supervisor import Child, Supervisor


@dataclass
class UpOptions:
    state_file: Path = Path(".helm/stack.json")
    gateway_port: int = 8000
    run_dir: Path = Path(".helm/run")
    services: list[str] = field(
        default_factory=lambda: ["runtime", "observer", "governor", "gateway"]
    )


def _port_or_free(port: int) -> int:
    """``port`` if it is free, else any free port (0 asks for any)."""
    if port == 0:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


class Stack:
    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.settings = load(CommonSettings)
        self.broker: EmbeddedBroker | None = None
        self.redis: EmbeddedRedis | None = None
        self.supervisor = Supervisor(on_change=self.write_state)
        self.env: dict[str, str] = {}
        self.token = os.environ.get("HELM_GATEWAY_OPERATOR_TOKEN") or secrets.token_urlsafe(24)
        self.gateway_port = _port_or_free(options.gateway_port)
        self.ports: dict[str, tuple[str, int]] = {}  # instance -> (service, ops port)
        self.workers: list[dict[str, str]] = []  # the runtime's workers' endpoints, from Redis
        self.workers_changed = asyncio.Event()

    def start_servers(self) -> None:
        log_dir = self.options.run_dir
        if not os.environ.get("HELM_KAFKA_BOOTSTRAP"):
            self.broker = EmbeddedBroker(log_dir=log_dir)
            self.broker.start()
            self.env["HELM_KAFKA_BOOTSTRAP"] = self.broker.bootstrap
        if not os.environ.get("HELM_REDIS_URL"):
            self.redis = EmbeddedRedis(log_dir=log_dir)
            self.redis.start()
            self.env["HELM_REDIS_URL"] = self.redis.url
        self.env["HELM_GATEWAY_OPERATOR_TOKEN"] = self.token
        self.env["HELM_GATEWAY_PORT"] = str(self.gateway_port)
        if "HELM_LOG_JSON" not in os.environ:
            self.env["HELM_LOG_JSON"] = "false" if sys.stdout.isatty() else "true"

    def children(self) -> list[Child]:
        py = sys.executable
        out: list[Child] = []
        for name in self.options.services:
            env = {}
            if name != "gateway":
                self.ports[name] = (name, free_port())
                env[f"HELM_{name.upper()}_OPS_PORT"] = str(self.ports[name][1])
            if name == "runtime":  # the runtime owns the workers here
                env["HELM_RUNTIME_MANAGE_WORKERS"] = os.environ.get(
                    "HELM_RUNTIME_MANAGE_WORKERS", "true"
                )
            out.append(Child(name, [py, "-m", f"services.{name}"], env))
        return out

    def expected_workers(self) -> int:
        """Worker instances the configuration asks the runtime to start."""
        manages = os.environ.get("HELM_RUNTIME_MANAGE_WORKERS", "true").lower()
        if "runtime" not in self.options.services or manages in ("0", "false", "no", "off"):
            return 0
        config = load_config(self.settings.config_file)
        return sum(a.min_instances for a in config.agents if a.kind != "custom")

    async def follow_workers(self, stop: asyncio.Event, every_s: float = 1.0) -> None:
        """Keep the state file's endpoints in step with the workers registered in Redis."""
        redis = self.settings.redis
        url = self.env.get("HELM_REDIS_URL") or os.environ.get("HELM_REDIS_URL") or redis.url
        store = Store(RedisSettings(url=url, prefix=redis.prefix))
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # Redis restarting: keep the last known
                    found = sorted(
                        (e for e in await store.endpoints() if e.get("service") == "worker"),
                        key=lambda e: e.get("instance", ""),
                    )
                    if found != self.workers:
                        self.workers = found
                        self.write_state()
                        self.workers_changed.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
        finally:
            self.workers_changed.set()
            await store.close()

    async def wait_workers(self, stop: asyncio.Event, deadline_s: float = 60.0) -> bool:
        """Wait until the workers the configuration asks for registered their endpoints."""
        want, end = self.expected_workers(), time.monotonic() + deadline_s
        while True:
            self.workers_changed.clear()
            left = end - time.monotonic()
            if len(self.workers) >= want or stop.is_set() or left <= 0:
                return len(self.workers) >= want
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.workers_changed.wait(), left)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def write_state(self) -> None:
        state = {
            "base_url": self.base_url,
            "dashboard_url": f"{self.base_url}/#token={self.token}",
            "token": self.token,
            "kafka_bootstrap": self.env.get(
                "HELM_KAFKA_BOOTSTRAP", os.environ.get("HELM_KAFKA_BOOTSTRAP")
            ),
            "redis_url": self.env.get("HELM_REDIS_URL", os.environ.get("HELM_REDIS_URL")),
            "topic_prefix": self.settings.kafka.topic_prefix,
            "pids": {c.name: c.pid for c in self.supervisor.children},
            "restarts": {c.name: c.restarts for c in self.supervisor.children},
            "endpoints": [
                {
                    "service": "gateway",
                    "instance": "gateway",
                    "target": f"127.0.0.1:{self.gateway_port}",
                }
            ]
            + [
                {"service": svc, "instance": k, "target": f"127.0.0.1:{p}"}
                for k, (svc, p) in self.ports.items()
            ]
            + self.workers,
        }
        path = self.options.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    async def wait_gateway(self, deadline_s: float = 90.0) -> bool:
        end = time.monotonic() + deadline_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < end:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/healthz", timeout=2)).status_code == 200:
                        return True
                await asyncio.sleep(0.25)
        return False

    def stop_servers(self) -> None:
        for server in (self.broker, self.redis):
            if server is not None:
                server.stop()


async def up(options: UpOptions) -> int:
    stack = Stack(options)
    stop = asyncio.Event()
    install_stop(stop)
    stack.start_servers()
    os.environ.update(stack.env)
    follower = asyncio.create_task(stack.follow_workers(stop))
    try:
        for child in stack.children():
            await stack.supervisor.add(child)
        if not await stack.wait_workers(stop):
            sys.stdout.write("not every worker started; see the runtime's log lines above\n")
        if await stack.wait_gateway():
            _banner(stack)
        else:
            sys.stdout.write("the gateway did not become healthy; see the log lines above\n")
        await stop.wait()
        sys.stdout.write("stopping Helm ...\n")
        return 0
    finally:
        stop.set()
        await follower
        await stack.supervisor.stop()
        stack.stop_servers()
        with contextlib.suppress(FileNotFoundError):
            options.state_file.unlink()
        sys.stdout.write("Helm stopped.\n")
        sys.stdout.flush()


def _banner(stack: Stack) -> None:
    lines = [
        "",
        "Helm is up.",
        f"  dashboard: {stack.base_url}/#token={stack.token}",
        f"  API:       {stack.base_url}/docs   (operator token: {stack.token})",
        f"  Kafka:     {stack.env.get('HELM_KAFKA_BOOTSTRAP', os.environ.get('HELM_KAFKA_BOOTSTRAP'))}",
        f"  Redis:     {stack.env.get('HELM_REDIS_URL', os.environ.get('HELM_REDIS_URL'))}",
        "  Ctrl+C stops everything.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
