"""A real local HTTP server that speaks enough of Anthropic's Messages API for the real SDK.

Tests point ``AsyncAnthropic(base_url=server.base_url)`` (or ``AnthropicProvider``) at it and
script what each request gets::

    with MessagesAPI() as server:
        server.script(status(429, retry_after=0), ok("hi", input_tokens=11, output_tokens=3))
        ...                                   # drive the code under test
        assert len(server.message_requests) == 2
        assert server.requests[0].body["model"] == "claude-haiku-4-5"

What it guarantees:

- ``POST /v1/messages`` answers a plain JSON ``message`` or, when the body says ``"stream": true``,
  the SSE sequence ``message_start`` (usage.input_tokens) / ``content_block_start`` / ``ping`` /
  ``content_block_delta`` text_delta... / ``content_block_stop`` / ``message_delta``
  (usage.output_tokens, stop_reason) / ``message_stop``. Token counts are exactly the scripted
  ones, so a test can assert them end to end.
- Each valid ``/v1/messages`` request consumes the next scripted behaviour, in order; when the
  script is empty it gets ``server.default`` (``ok()`` unless set). Errors have Anthropic's JSON
  shape ``{"type": "error", "error": {"type": ..., "message": ...}}`` and a ``request-id`` header.
- Like the real API it rejects, with 400 and without consuming a behaviour, a body missing
  ``model`` / ``max_tokens`` / ``messages`` or carrying ``temperature`` / ``top_p`` / ``top_k``
  under API version 2026-10-21; and with 401 a request without credentials.
- ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": n}``: ``count_tokens_answer``
  when set, else one token per four characters of text (at least one).
- Every request, valid or not, is recorded in arrival order (``server.requests``) before it is
  answered, so "the server received no request" is ``server.requests == []``.
- Delays (``slow_first_token``, ``hang``) end early when the server stops, so stopping is quick.

It runs uvicorn on 127.0.0.1 with a free port in a daemon thread: it serves sync and async tests
alike, and a slow scripted answer never blocks the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_SAMPLING = ("temperature", "top_p", "top_k")
_NO_SAMPLING_SINCE = "2026-10-21"  # API versions compare as ISO dates


# ---- behaviours: what one request gets -------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful answer; ``first_token_delay_s`` holds back the first text delta."""

    text: str = "Hello from the Messages API test server."
    input_tokens: int = 12
    output_tokens: int = 9
    stop_reason: str = "end_turn"
    first_token_delay_s: float = 0.0


@dataclass(frozen=True)
class Status:
    """An HTTP error with Anthropic's error body, and ``retry-after`` when given."""

    code: int
    error_type: str
    message: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Hang:
    """Send nothing for ``seconds``, then 504 ``timeout_error`` (the client has usually gone)."""

    seconds: float


@dataclass(frozen=True)
class StreamError:
    """A 200 stream that fails after ``message_start`` with an SSE ``error`` event."""

    error_type: str = "overloaded_error"
    message: str = "Overloaded"


Behaviour = Reply | Status | Hang | StreamError


def ok(
    text: str = Reply.text,
    input_tokens: int = Reply.input_tokens,
    output_tokens: int = Reply.output_tokens,
    *,
    stop_reason: str = "end_turn",
) -> Reply:
    """Answer ``text`` with exactly these usage numbers."""
    return Reply(text, input_tokens, output_tokens, stop_reason)


def slow_first_token(
    seconds: float,
    text: str = Reply.text,
    input_tokens: int = Reply.input_tokens,
    output_tokens: int = Reply.output_tokens,
) -> Reply:
    """Like ``ok`` but the first text delta (or the whole non-streamed body) waits ``seconds``."""
    return Reply(text, input_tokens, output_tokens, first_token_delay_s=seconds)


def status(
    code: int, *, retry_after: float | None = None, error_type: str | None = None, message: str = ""
) -> Status:
    """Fail with HTTP ``code``; the error type defaults to Anthropic's for that code."""
    kind = error_type or _ERROR_TYPES.get(code, "api_error")
    return Status(code, kind, message or kind.replace("_", " "), retry_after)


def hang(seconds: float) -> Hang:
    """Stall for ``seconds`` before any byte of the response: a client timeout."""
    return Hang(seconds)


def stream_error(error_type: str = "overloaded_error", message: str = "Overloaded") -> StreamError:
    """Start a 200 stream, then fail inside it, as the real API does when overloaded mid-answer."""
    return StreamError(error_type, message)


# ---- what the server saw -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: header names lower-case, body parsed (``{}`` if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))


# ---- the server ------------------------------------------------------------------------------


class MessagesAPI:
    """The scriptable server; use as a context manager or call ``start`` / ``stop``."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default: Behaviour = default or ok()
        self.count_tokens_answer: int | None = None
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- scripting and inspection (any thread) --

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests to ``/v1/messages``, in order."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """Only the ``POST /v1/messages`` calls: what a model call costs."""
        return [r for r in self.requests if r.path == "/v1/messages"]

    @property
    def pending(self) -> int:
        """Scripted behaviours not yet consumed."""
        with self._lock:
            return len(self._script)

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("MessagesAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- lifecycle --

    def start(self, deadline_s: float = 10.0) -> None:
        app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="messages-api", daemon=True)
        self._thread.start()
        self._wait_started(self._server, deadline_s)
        self._port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self, deadline_s: float = 10.0) -> None:
        self._stopping.set()  # ends scripted delays, so in-flight requests finish at once
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            if self._loop is not None and self._stopped is not None:
                # The loop may close between the check and the call; then nothing is waiting.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._stopped.set)
            self._server.should_exit = True
            self._thread.join(deadline_s)

    def __enter__(self) -> MessagesAPI:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_started(self, server: uvicorn.Server, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while not server.started:
            if self._thread is None or not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("MessagesAPI did not start")
            time.sleep(0.005)

    # -- handlers (the server's thread) --

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        recorded = RecordedRequest(
            request.method,
            request.url.path,
            dict(request.headers),
            body if isinstance(body, dict) else {},
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    async def _messages(self, request: Request) -> Response:
        recorded = await self._record(request)
        rejection = _rejection(recorded)
        if rejection is not None:
            return rejection
        behaviour = self._next()
        if isinstance(behaviour, Status):
            return error_response(behaviour)
        if isinstance(behaviour, Hang):
            await self._pause(behaviour.seconds)
            return error_response(status(504, message="the test server hung"))
        if recorded.streamed:
            return _sse(self._events(recorded.body, behaviour))
        return await self._plain(recorded.body, behaviour)

    async def _count_tokens(self, request: Request) -> Response:
        recorded = await self._record(request)
        answer = self.count_tokens_answer
        if answer is None:
            answer = max(1, math.ceil(len(json.dumps(recorded.body.get("messages", ""))) / 4))
        return JSONResponse({"input_tokens": answer})

    async def _plain(self, body: dict[str, Any], behaviour: Reply | StreamError) -> Response:
        if isinstance(behaviour, StreamError):
            return error_response(status(500, error_type=behaviour.error_type))
        await self._pause(behaviour.first_token_delay_s)
        message = _message(body, behaviour, content=[{"type": "text", "text": behaviour.text}])
        message["stop_reason"] = behaviour.stop_reason
        return JSONResponse(message, headers={"request-id": _request_id()})

    async def _events(
        self, body: dict[str, Any], behaviour: Reply | StreamError
    ) -> AsyncIterator[str]:
        if isinstance(behaviour, StreamError):
            yield _event("message_start", {"message": _message(body, Reply(output_tokens=1))})
            error = {"type": behaviour.error_type, "message": behaviour.message}
            yield _event("error", {"error": error})
            return
        start = _message(body, behaviour, content=[])
        start["usage"]["output_tokens"] = 1  # as the real API: the final count comes later
        yield _event("message_start", {"message": start})
        yield _event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        yield _event("ping", {})
        await self._pause(behaviour.first_token_delay_s)
        for chunk in _chunks(behaviour.text):
            delta = {"type": "text_delta", "text": chunk}
            yield _event("content_block_delta", {"index": 0, "delta": delta})
        yield _event("content_block_stop", {"index": 0})
        end: dict[str, Any] = {"stop_reason": behaviour.stop_reason, "stop_sequence": None}
        usage = {"output_tokens": behaviour.output_tokens}
        yield _event("message_delta", {"delta": end, "usage": usage})
        yield _event("message_stop", {})

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` in the server's loop, or less if the server is stopping."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event().wait(), seconds)

    def _stop_event(self) -> asyncio.Event:
        # Made lazily in the server's own loop; `stop` sets it from the test's thread.
        if self._stopped is None:
            self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
            if self._stopping.is_set():
                self._stopped.set()
        return self._stopped


# ---- wire format -----------------------------------------------------------------------------


def _rejection(recorded: RecordedRequest) -> Response | None:
    """The 4xx the real API would give before looking at the request's content, if any."""
    headers, body = recorded.headers, recorded.body
    if not (headers.get("x-api-key") or headers.get("authorization")):
        return error_response(status(401, message="x-api-key or authorization is required"))
    missing = [name for name in ("model", "max_tokens", "messages") if name not in body]
    if missing:
        return error_response(status(400, message=f"{missing[0]}: Field required"))
    version = headers.get("anthropic-version", "")
    sampling = [name for name in _SAMPLING if name in body]
    if sampling and version >= _NO_SAMPLING_SINCE:
        return error_response(status(400, message=f"{sampling[0]}: Extra inputs are not permitted"))
    return None


def error_response(failure: Status) -> Response:
    """Anthropic's error JSON for ``failure``, with ``retry-after`` when it has one."""
    request_id = _request_id()
    headers = {"request-id": request_id}
    if failure.retry_after is not None:
        headers["retry-after"] = f"{failure.retry_after:g}"
    error = {"type": failure.error_type, "message": failure.message}
    content = {"type": "error", "error": error, "request_id": request_id}
    return JSONResponse(content, status_code=failure.code, headers=headers)


def _message(
    body: dict[str, Any], reply: Reply, *, content: list[Any] | None = None
) -> dict[str, Any]:
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    return {
        "id": f"msg_test_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": content or [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"


def _sse(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"request-id": _request_id(), "cache-control": "no-cache"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _chunks(text: str) -> Iterator[str]:
    """Word-sized deltas, whitespace kept, so the pieces join back to ``text`` exactly."""
    yield from (piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece)


def _request_id() -> str:
    return f"req_test_{uuid.uuid4().hex[:20]}"
