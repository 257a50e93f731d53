"""Services built in-process against the real broker and Redis, for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from helm.base import BaseApp
from helm.settings import KafkaSettings, RedisSettings


@asynccontextmanager
async def running(*apps: BaseApp) -> AsyncIterator[list[BaseApp]]:
    """Start the apps and their loops; stop them in reverse order on exit."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    started: list[BaseApp] = []
    try:
        for app in apps:
            await app.start()
            started.append(app)
            tasks += [asyncio.create_task(loop) for loop in app.loops(stop)]
        yield started
    finally:
        stop.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for app in reversed(started):
            await app.stop()
        errors = [
            d
            for d in done
            if isinstance(d, BaseException) and not isinstance(d, asyncio.CancelledError)
        ]
        assert not errors, f"a service loop failed: {errors!r}"


def common(kafka: KafkaSettings, redis: RedisSettings, **extra: Any) -> dict[str, Any]:
    return {"kafka": kafka, "redis": redis, "ops_port": 0, **extra}
