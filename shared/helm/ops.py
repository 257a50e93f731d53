"""The ops endpoint every service without its own HTTP API serves: ``/metrics`` and ``/healthz``.

``/healthz`` really pings Kafka and Redis (with a timeout) and caches the answer for a few
seconds, so a scraper or an orchestrator cannot turn health checks into load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]


class HealthProbe:
    """Runs named dependency checks with a timeout; caches the verdict for ``ttl_s``."""

    def __init__(
        self, checks: dict[str, Check], timeout_s: float = 2.0, ttl_s: float = 3.0
    ) -> None:
        self.checks, self.timeout_s, self.ttl_s = checks, timeout_s, ttl_s
        self._cached: tuple[float, dict[str, str]] | None = None

    async def _one(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout_s)
            return "ok"
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}: {exc}"[:300]

    async def status(self) -> dict[str, str]:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.ttl_s:
            return self._cached[1]
        names = list(self.checks)
        results = await asyncio.gather(*(self._one(self.checks[n]) for n in names))
        verdict = dict(zip(names, results, strict=True))
        self._cached = (now, verdict)
        return verdict


class OpsServer:
    """A minimal HTTP/1.1 server for ``GET /metrics`` and ``GET /healthz``."""

    def __init__(
        self, registry: CollectorRegistry, health: HealthProbe, host: str, port: int
    ) -> None:
        self.registry, self.health, self.host, self.port = registry, health, host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("ops endpoint on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1].decode(errors="replace") if b" " in request else "/"
            status, ctype, body = await self._route(path.split("?", 1)[0])
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            checks = await self.health.status()
            ok = all(v == "ok" for v in checks.values())
            body = json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}).encode()
            return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body
        return "404 Not Found", "application/json", b'{"error": "not found"}'
