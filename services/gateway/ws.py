"""The ``/ws`` endpoint: read permission to connect, the operator token for control messages.

A control message is ``{"action": ..., "agent_id": ..., "token": ..., "id": <echoed>}`` with
action ``pause``, ``resume``, ``clear_constraints``, ``simulate_anomaly`` or ``ack``
(``incident_id``). The reply is ``{"type": "result", ...}`` or ``{"type": "error", "status",
"error"}`` with the same status codes as the REST API.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.websockets import WebSocket

from services.gateway import handlers, queries
from services.gateway.context import Gateway
from services.gateway.errors import ApiError
from services.gateway.live import Hub
from services.gateway.models import AnomalyRequest

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
Action = Callable[[Gateway, dict[str, Any], str], Awaitable[BaseModel]]


def _arg(msg: dict[str, Any], name: str) -> str:
    value = msg.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"control message needs {name!r} (a string)")
    return value


def _reason(msg: dict[str, Any]) -> str:
    return str(msg.get("reason") or "")[:2000]


async def _pause(gw: Gateway, msg: dict[str, Any], actor: str) -> BaseModel:
    return await handlers.pause(gw, _arg(msg, "agent_id"), actor, _reason(msg))


async def _resume(gw: Gateway, msg: dict[str, Any], actor: str) -> BaseModel:
    return await handlers.resume(gw, _arg(msg, "agent_id"), actor, _reason(msg))


async def _clear(gw: Gateway, msg: dict[str, Any], actor: str) -> BaseModel:
    return await handlers.clear_constraints(gw, _arg(msg, "agent_id"), actor, _reason(msg))


async def _anomaly(gw: Gateway, msg: dict[str, Any], actor: str) -> BaseModel:
    try:
        body = AnomalyRequest.model_validate(msg.get("params") or {})
    except ValidationError as exc:
        raise ApiError(422, f"invalid anomaly parameters: {exc.errors()[0]['msg']}") from None
    return await handlers.inject_anomaly(gw, _arg(msg, "agent_id"), actor, body)


async def _ack(gw: Gateway, msg: dict[str, Any], actor: str) -> BaseModel:
    return await handlers.acknowledge(gw, _arg(msg, "incident_id"), actor, _reason(msg))


ACTIONS: dict[str, Action] = {
    "pause": _pause,
    "resume": _resume,
    "clear_constraints": _clear,
    "simulate_anomaly": _anomaly,
    "ack": _ack,
}


class WsSession:
    """Authorises WebSocket clients and answers their control messages."""

    def __init__(self, gw: Gateway, hub: Hub) -> None:
        self.gw, self.hub = gw, hub

    async def serve(self, ws: WebSocket, token: str | None) -> None:
        try:
            self.gw.guard.reader(token)
        except ApiError as exc:
            await ws.close(POLICY_VIOLATION, exc.message[:120])
            return
        await self.hub.serve(ws, self.snapshot, self.control)

    async def snapshot(self) -> dict[str, Any]:
        state = await queries.state(self.gw)
        return {
            "state": state.model_dump(mode="json"),
            "series": await queries.series(self.gw, list(state.agents)),
            "budgets": [b.model_dump(mode="json") for b in await queries.budgets(self.gw)],
        }

    async def control(self, msg: dict[str, Any]) -> dict[str, Any]:
        base = {"id": msg.get("id"), "action": msg.get("action")}
        try:
            action = ACTIONS.get(str(msg.get("action")))
            if action is None:
                raise ApiError(422, f"unknown action; use one of {', '.join(ACTIONS)}")
            token = msg.get("token") if isinstance(msg.get("token"), str) else None
            actor = self.gw.guard.operator(token, None)
            result = await action(self.gw, msg, actor)
            return {"type": "result", **base, "result": result.model_dump(mode="json")}
        except ApiError as exc:
            return {"type": "error", **base, "status": exc.status, "error": exc.message}
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("control message failed, Redis unreachable: %s", exc)
            return {"type": "error", **base, "status": 503, "error": "Redis is unreachable"}
