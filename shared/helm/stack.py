"""``helmctl up``: the whole of Helm on one machine, no Docker, no root.

Starts the embedded broker and Redis (unless ``HELM_KAFKA_BOOTSTRAP`` / ``HELM_REDIS_URL`` point at
real ones), then the services as supervised processes: runtime, observer, governor, one worker
per agent instance, and the gateway. Prints the dashboard URL once the gateway answers and keeps a
state file (URLs, token, pids, metrics endpoints) for scripts and tests. Ctrl+C or SIGTERM stops
the services in reverse order, then the servers.
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
from helm.settings import CommonSettings, load
from helm.supervisor import Child, Supervisor


@dataclass
class UpOptions:
    state_file: Path = Path(".helm/stack.json")
    gateway_port: int = 8000
    run_dir: Path = Path(".helm/run")
    services: list[str] = field(
        default_factory=lambda: ["runtime", "observer", "governor", "workers", "gateway"]
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
            if name == "workers":
                out += self._workers()
                continue
            env = {}
            if name != "gateway":
                self.ports[name] = (name, free_port())
                env[f"HELM_{name.upper()}_OPS_PORT"] = str(self.ports[name][1])
            out.append(Child(name, [py, "-m", f"services.{name}"], env))
        return out

    def _workers(self) -> list[Child]:
        config = load_config(self.settings.config_file)
        out = []
        for agent in config.agents:
            for n in range(max(1, agent.min_instances)):
                iid = f"{agent.id}-{n}"
                self.ports[f"worker.{iid}"] = ("worker", free_port())
                env = {
                    "HELM_WORKER_AGENT": agent.id,
                    "HELM_WORKER_INSTANCE_ID": iid,
                    "HELM_WORKER_OPS_PORT": str(self.ports[f"worker.{iid}"][1]),
                }
                out.append(Child(f"worker.{iid}", [sys.executable, "-m", "services.worker"], env))
        return out

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
            ],
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
    try:
        for child in stack.children():
            await stack.supervisor.add(child)
        if await stack.wait_gateway():
            _banner(stack)
        else:
            sys.stdout.write("the gateway did not become healthy; see the log lines above\n")
        await stop.wait()
        sys.stdout.write("stopping Helm ...\n")
        return 0
    finally:
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
