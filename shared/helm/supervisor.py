"""Supervised child processes for ``helmctl up``.

Each child's output is relayed line by line with its name in front. A child that exits on its
own is restarted with exponential back-off (1 s doubling to 30 s, reset after a minute of good
health), like a process supervisor would; stopping sends SIGTERM to all in reverse order of
start, waits a grace period, then kills what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

BACKOFF_START_S, BACKOFF_MAX_S, HEALTHY_AFTER_S = 1.0, 30.0, 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None


class Supervisor:
    def __init__(self, on_change: Callable[[], None] | None = None, grace_s: float = 15.0) -> None:
        self.children: list[Child] = []
        self.grace_s = grace_s
        self.stopping = False
        self.on_change = on_change or (lambda: None)
        self._watchers: list[asyncio.Task[None]] = []

    async def add(self, child: Child) -> None:
        self.children.append(child)
        await self._spawn(child)
        self._watchers.append(asyncio.create_task(self._watch(child)))

    async def _spawn(self, child: Child) -> None:
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env={**os.environ, **child.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches the supervisor only; it stops children in order
        )
        child.started = time.monotonic()
        self.on_change()

    async def _watch(self, child: Child) -> None:
        backoff = BACKOFF_START_S
        while True:
            assert child.proc is not None
            await self._relay(child)
            code = await child.proc.wait()
            if self.stopping:
                return
            if time.monotonic() - child.started > HEALTHY_AFTER_S:
                backoff = BACKOFF_START_S
            _say(child.name, f"exited with code {code}; restarting in {backoff:.0f} s")
            await asyncio.sleep(backoff)
            if self.stopping:
                return
            backoff = min(BACKOFF_MAX_S, backoff * 2)
            child.restarts += 1
            await self._spawn(child)

    async def _relay(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        async for raw in child.proc.stdout:
            _say(child.name, raw.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """SIGTERM in reverse order of start, a grace period, then SIGKILL."""
        self.stopping = True
        for child in reversed(self.children):
            if child.pid is not None:
                _signal(child, signal.SIGTERM)
                await self._wait(child, self.grace_s)
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    async def _wait(self, child: Child, grace_s: float) -> None:
        assert child.proc is not None
        try:
            await asyncio.wait_for(child.proc.wait(), grace_s)
        except TimeoutError:
            _say(child.name, f"did not stop within {grace_s:.0f} s; killing")
            _signal(child, signal.SIGKILL)
            await child.proc.wait()


def _signal(child: Child, sig: signal.Signals) -> None:
    if child.proc is not None and child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, sig)


def _say(name: str, line: str) -> None:
    sys.stdout.write(f"[{name:<18}] {line}\n")
    sys.stdout.flush()
