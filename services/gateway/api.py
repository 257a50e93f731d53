"""The FastAPI application: routes, JSON errors, metrics middleware, CORS, dashboard, WebSocket."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import errors, routes
from services.gateway.context import Gateway
from services.gateway.limits import BodyLimit
from services.gateway.live import Hub
from services.gateway.metrics import GatewayMetrics
from services.gateway.models import Health
from services.gateway.ws import WsSession

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DESCRIPTION = """Helm's control plane API. Reads are open unless a read token is configured;
every change needs the operator token as `Authorization: Bearer <token>`. Errors are JSON
`{"error": "..."}`."""


class RequestMetrics:
    """Counts requests by route template and status, and times them (HTTP only)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = [500], time.perf_counter()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-content-type-options", b"nosniff"))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def create_api(gw: Gateway, hub: Hub, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(title="Helm gateway", version="1.0.0", description=DESCRIPTION)
    app.state.gw = gw
    errors.install(app)
    app.include_router(routes.router)
    _ops_routes(app, gw, registry)
    _dashboard(app)
    session = WsSession(gw, hub)

    @app.websocket("/ws")
    async def live(websocket: WebSocket, token: str | None = None) -> None:
        await session.serve(websocket, token)

    if gw.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gw.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Helm-Operator"],
        )
    app.add_middleware(BodyLimit, max_bytes=gw.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=gw.metrics)
    return app


def _ops_routes(app: FastAPI, gw: Gateway, registry: CollectorRegistry) -> None:
    @app.get("/healthz", tags=["ops"], summary="Kafka and Redis reachable?", response_model=Health)
    async def healthz() -> Any:
        checks = await gw.health.status()
        down = [name for name, verdict in checks.items() if verdict != "ok"]
        if down:
            body = {
                "error": f"{' and '.join(down)} unreachable",
                "status": "unavailable",
                "checks": checks,
            }
            return JSONResponse(body, 503)
        return Health(status="ok", checks=checks)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _dashboard(app: FastAPI) -> None:
    if not (STATIC / "vendor" / "uPlot.iife.min.js").exists():
        log.warning("dashboard assets missing in %s/vendor: run `make dashboard`", STATIC)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
