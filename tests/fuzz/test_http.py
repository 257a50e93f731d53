"""The gateway's REST API, fuzzed from its own OpenAPI schema with schemathesis.

The schema is the one the gateway serves at ``/openapi.json``; schemathesis turns each operation
into hypothesis strategies for valid requests (positive) and requests that break the schema
(negative), sent with and without the operator token to the real gateway (in-process, over its
ASGI interface, on the real Redis and broker). Whatever comes in, a user must get no 5xx (the
one expected is the chat's 504: no agent answers here) and every error as JSON with an "error"
message. Failures are shrunk by hypothesis and listed together at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from services.gateway.app import GatewayApp
from tests.integration.gateway.conftest import AUTH

# requests drawn per operation and mode, each sent without and with the operator token:
# 4 x 250 = 1,000 requests per operation
EXAMPLES = int(os.environ.get("HELM_FUZZ_HTTP_EXAMPLES", "250"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
log = logging.getLogger(__name__)
Send = Callable[[dict[str, Any]], httpx.Response]
pytestmark = pytest.mark.filterwarnings(
    # schemathesis's own strategies draw from `random`; hypothesis warns about it, not us
    "ignore:Do not use the `random` module inside strategies"
)


def _request(kwargs: dict[str, Any], auth: dict[str, str] | None) -> dict[str, Any]:
    out = {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params", "json")}
    if "data" in kwargs:  # a body schemathesis serialised itself (negative mode)
        data = kwargs["data"]
        out["content"] = data.encode() if isinstance(data, str) else data
    if auth is not None:
        out["headers"] = {**(out.get("headers") or {}), **auth}
    if kwargs.get("cookies"):
        cookie = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
        out["headers"] = {**(out.get("headers") or {}), "Cookie": cookie}
    return out


def problem(path: str, response: httpx.Response) -> str | None:
    """What a user would object to in this response, or None."""
    status = response.status_code
    if status >= 500 and not (status == 504 and path.endswith("/query")):
        return f"server error {status}: {response.text[:300]}"
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{status} without a JSON body: {response.text[:300]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return f"{status} without an error message: {str(body)[:300]}"
    return None


def fuzz(op: Any, mode: GenerationMode, send: Send, seen: Counter[str], label: str) -> None:
    """One operation in one mode: hypothesis draws the requests and shrinks any failure."""

    @seed(int(os.environ.get("HELM_FUZZ_SEED", "20240607")))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        for auth in (None, AUTH):
            request = _request(case.as_transport_kwargs(base_url="http://gateway"), auth)
            response = send(request)
            seen[label] += 1
            trouble = problem(op.path, response)
            shown = {k: v for k, v in request.items() if k in ("params", "json", "content")}
            who = "operator" if auth else "anonymous"
            assert trouble is None, f"{who} {request['method']} {request['url']} {shown}: {trouble}"

    # Unsatisfiable: nothing in this operation can be made invalid (no parameters, no body)
    with contextlib.suppress(Unsatisfiable):
        check()


@pytest.mark.parametrize("reads", [True, False], ids=["reads", "changes"])
async def test_the_gateway_survives_its_own_schema_fuzzed(gateway: GatewayApp, reads: bool) -> None:
    loop = asyncio.get_running_loop()
    transport = httpx.ASGITransport(app=gateway.api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        schema = schemathesis.openapi.from_dict((await http.get("/openapi.json")).json())
        assert threading.current_thread() is threading.main_thread()

        def send(request: dict[str, Any]) -> httpx.Response:
            future = asyncio.run_coroutine_threadsafe(http.request(**request), loop)
            return future.result(timeout=30)

        every = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        operations = [op for op in every if (op.method.lower() == "get") == reads]
        seen: Counter[str] = Counter()
        failures: list[str] = []
        for op in operations:
            for mode in MODES:
                try:
                    await asyncio.to_thread(fuzz, op, mode, send, seen, op.label)
                except AssertionError as exc:
                    failures.append(f"{op.method.upper()} {op.path} ({mode}): {exc}")
    summary = ", ".join(f"{label} {n}" for label, n in sorted(seen.items()))
    log.info("HTTP fuzz: %d requests (%s)", sum(seen.values()), summary)
    assert not failures, "\n".join(failures) + f"\n(requests per path: {summary})"
    assert len(seen) == len(operations), summary
