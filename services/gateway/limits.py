"""The request body limit: a body above ``HELM_GATEWAY_MAX_BODY_BYTES`` is refused with 413.

Checked before any route runs, on the declared ``Content-Length`` when there is one and on the
bytes actually received otherwise (a chunked upload), so an oversized body is never parsed. The
body, at most the limit, is read here and handed on unchanged.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SETTING = "HELM_GATEWAY_MAX_BODY_BYTES"


class BodyLimit:
    """ASGI middleware refusing HTTP request bodies larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def again() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, again, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        message = (
            f"request body too large: {size:,} bytes or more, above the limit of "
            f"{self.max_bytes:,} bytes ({SETTING})"
        )
        await JSONResponse({"error": message}, 413)(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
