"""How every service runs: one stop event from SIGTERM/SIGINT, root tasks, ordered shutdown.

A service's loops are root tasks: if one dies, the others are cancelled and the process exits
non-zero, so the supervisor restarts it; a crashed loop never hides behind a healthy process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop(stop: asyncio.Event) -> None:
    """Make SIGINT and SIGTERM set ``stop`` (once; a second signal exits at once)."""
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", sig.name)
            sys.exit(130)
        log.info("%s received: stopping", sig.name)
        stop.set()

    for sig in HANDLED_SIGNALS:
        loop.add_signal_handler(sig, handle, sig)


class Service(Protocol):
    async def start(self) -> None: ...
    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]: ...
    def system_loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]: ...
    async def stop(self) -> None: ...


async def run_loops(loops: list[Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
    """Run root tasks until ``stop``; the first to fail cancels the rest and re-raises."""
    tasks = [asyncio.create_task(c) for c in loops]
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if task is not waiter and not stop.is_set():
                raise RuntimeError(f"root task {task.get_coro()!r} ended on its own")
    finally:
        stop.set()
        waiter.cancel()
        await _drain(tasks)


async def _drain(tasks: list[asyncio.Task[None]], grace_s: float = 10.0) -> None:
    """Give loops that watch ``stop`` a grace period to finish, then cancel what is left."""
    _, pending = await asyncio.wait(tasks, timeout=grace_s) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def serve(build: Callable[[], Service]) -> None:
    """Build, start, run until a signal or a failed loop, stop in reverse order."""
    stop = asyncio.Event()
    install_stop(stop)
    service = build()
    await service.start()
    try:
        await run_loops(service.loops(stop) + service.system_loops(stop), stop)
    finally:
        await service.stop()


def main(build: Callable[[], Service]) -> None:
    """Entry point body for ``python -m services.<name>``; exit code 1 when a loop failed."""
    try:
        asyncio.run(serve(build))
    except Exception:
        log.exception("service failed")
        sys.exit(1)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when ``stop`` is set; True when stopping."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
