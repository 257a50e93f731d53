"""The gateway as the benchmark runs it: the real service plus one route with a constant body.

``python -m bench.gateway_server`` with the usual ``HELM_*`` settings; ``GET /_constant`` answers
the bytes in ``HELM_BENCH_CONSTANT_FILE`` (a captured ``/state``) without touching Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import Response

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.gateway.app import GatewayApp, build_app
from services.gateway.settings import GatewaySettings


def build() -> GatewayApp:
    app = build_app(load(GatewaySettings))
    body = Path(os.environ["HELM_BENCH_CONSTANT_FILE"]).read_bytes()

    async def constant() -> Response:
        return Response(body, media_type="application/json")

    app.api.add_api_route("/_constant", constant, methods=["GET"])
    return app


if __name__ == "__main__":
    setup_logging("gateway-bench", "WARNING")
    main(build)
