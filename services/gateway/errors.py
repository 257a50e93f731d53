"""Every error the API returns is JSON ``{"error": "..."}`` with a message saying what is wrong.

Validation errors keep FastAPI's ``detail`` list beside the message; an unreachable Redis or Kafka
is a 503 naming which one, never a 500 with a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with a status code and a message for the caller."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"unknown {what} {ident!r}")


def error_body(message: str, **extra: object) -> dict[str, object]:
    return {"error": message, **extra}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.message), exc.status, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body(str(exc.detail)), exc.status_code, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in details[:5]
    ]
    body = error_body("invalid request: " + "; ".join(parts), detail=_jsonable(details))
    return JSONResponse(body, 422)


def _jsonable(details: object) -> object:
    """FastAPI's error list can hold exceptions in ``ctx``; keep only what JSON can carry."""
    if isinstance(details, dict):
        return {k: _jsonable(v) for k, v in details.items()}
    if isinstance(details, list | tuple):
        return [_jsonable(v) for v in details]
    if details is None or isinstance(details, str | int | float | bool):
        return details
    return str(details)


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis unreachable: %s", exc)
    return JSONResponse(error_body(f"Redis is unreachable: {type(exc).__name__}"), 503)


async def _kafka_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("Kafka unavailable: %s", exc)
    return JSONResponse(error_body(f"Kafka is unavailable: {type(exc).__name__}: {exc}"), 503)


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(KafkaError, _kafka_down)
