"""Health checks with Kubernetes probe semantics, run on an injectable clock.

Each (target, check) pair is first run ``initial_delay`` seconds after it is added, then every
``interval`` seconds. A run fails if the function returns a falsy value, raises, or outlives
``timeout``. ``failure_threshold`` consecutive failures make the check UNHEALTHY;
``success_threshold`` consecutive successes make it HEALTHY (from UNKNOWN too). While a target has
a STARTUP check that has not yet succeeded, its other checks do not run; once it succeeds it is
not run again. Every status change is reported to ``on_transition``; what it means (restart,
out of work, incident) is the runtime's business. ``run_due`` runs what is due now, so tests
move a ``ManualClock`` and call it, with no sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from helix.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class CheckType(StrEnum):
    LIVENESS = "liveness"  # failing → the instance is restarted
    READINESS = "readiness"  # failing → the instance gets no work until it passes
    STARTUP = "startup"  # gates the others until it first passes; failing → restart
    CUSTOM = "custom"  # failing → an event (an incident for the services)


class HealthStatus(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


CheckFn = Callable[..., Awaitable[Any] | Any]


@dataclass(frozen=True)
class HealthCheck:
    """A probe. ``check_fn`` takes no argument, or one: the target's context."""

    name: str
    check_fn: CheckFn
    check_type: CheckType = CheckType.CUSTOM
    interval: float = 30.0
    timeout: float = 10.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("thresholds must be at least 1")
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be positive")


@dataclass
class CheckState:
    """Where one check of one target stands."""

    check: HealthCheck
    context: Any
    next_due: float
    status: HealthStatus = HealthStatus.UNKNOWN
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_error: str | None = None
    last_run: float | None = None
    runs: int = 0


@dataclass(frozen=True)
class HealthTransition:
    target_id: str
    check_name: str
    check_type: CheckType
    old: HealthStatus
    new: HealthStatus
    error: str | None = None


TransitionCallback = Callable[[HealthTransition], Awaitable[None] | None]


@dataclass
class _Target:
    checks: dict[str, CheckState] = field(default_factory=dict)


async def _probe(state: CheckState) -> str | None:
    """None on success, else why it failed."""
    fn = state.check.check_fn
    takes_context = any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )
    try:
        result = fn(state.context) if takes_context else fn()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, state.check.timeout)
    except TimeoutError:
        return f"timed out after {state.check.timeout:g}s"
    except Exception as exc:  # a raising check is a failing check, whatever it raised
        return f"raised {type(exc).__name__}: {exc}"
    return None if result else f"returned {result!r}"


class HealthChecker:
    """Runs health checks for many targets (instances) on their schedules."""

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, on_transition: TransitionCallback | None = None
    ):
        self._clock = clock
        self._targets: dict[str, _Target] = {}
        self._callbacks: list[TransitionCallback] = [on_transition] if on_transition else []

    def on_transition(self, callback: TransitionCallback) -> None:
        self._callbacks.append(callback)

    def add(self, target_id: str, check: HealthCheck, context: Any = None) -> None:
        """Start checking ``target_id`` with ``check`` (first run after ``initial_delay``)."""
        due = self._clock.monotonic() + check.initial_delay
        self._targets.setdefault(target_id, _Target()).checks[check.name] = CheckState(
            check, context, due
        )

    def remove_target(self, target_id: str) -> None:
        self._targets.pop(target_id, None)

    def states(self, target_id: str) -> dict[str, CheckState]:
        return dict(self._targets[target_id].checks) if target_id in self._targets else {}

    def status(self, target_id: str, check_type: CheckType | None = None) -> HealthStatus:
        """UNHEALTHY if any matching check is, HEALTHY if all are, else UNKNOWN."""
        found = [
            s.status
            for s in self.states(target_id).values()
            if check_type is None or s.check.check_type is check_type
        ]
        if HealthStatus.UNHEALTHY in found:
            return HealthStatus.UNHEALTHY
        if found and all(s is HealthStatus.HEALTHY for s in found):
            return HealthStatus.HEALTHY
        return HealthStatus.UNKNOWN if found else HealthStatus.HEALTHY

    def _due(self, now: float) -> list[tuple[str, CheckState]]:
        due = []
        for tid, target in self._targets.items():
            startup = [s for s in target.checks.values() if s.check.check_type is CheckType.STARTUP]
            started = all(s.status is HealthStatus.HEALTHY for s in startup)
            for s in target.checks.values():
                is_startup = s.check.check_type is CheckType.STARTUP
                if s.next_due <= now and (is_startup != started):
                    due.append((tid, s))
        return due

    async def run_due(self) -> list[HealthTransition]:
        """Run every check that is due now (concurrently); return the status changes."""
        now = self._clock.monotonic()
        due = self._due(now)
        for _, state in due:
            state.next_due = now + state.check.interval
        errors = await asyncio.gather(*(_probe(s) for _, s in due))
        changes = [
            t for (tid, s), e in zip(due, errors, strict=True) if (t := self._apply(tid, s, e, now))
        ]
        for change in changes:
            await self._notify(change)
        return changes

    def _apply(
        self, tid: str, s: CheckState, error: str | None, now: float
    ) -> HealthTransition | None:
        s.runs, s.last_run, s.last_error = s.runs + 1, now, error
        if error is None:
            s.consecutive_successes, s.consecutive_failures = s.consecutive_successes + 1, 0
            reached = s.consecutive_successes >= s.check.success_threshold
            new = HealthStatus.HEALTHY if reached else s.status
        else:
            s.consecutive_failures, s.consecutive_successes = s.consecutive_failures + 1, 0
            reached = s.consecutive_failures >= s.check.failure_threshold
            new = HealthStatus.UNHEALTHY if reached else s.status
        if new is s.status:
            return None
        old, s.status = s.status, new
        return HealthTransition(tid, s.check.name, s.check.check_type, old, new, error)

    async def _notify(self, change: HealthTransition) -> None:
        log.info(
            "health %s/%s: %s → %s (%s)",
            change.target_id,
            change.check_name,
            change.old,
            change.new,
            change.error,
        )
        for callback in self._callbacks:
            result = callback(change)
            if inspect.isawaitable(result):
                await result

    def reset(self, target_id: str) -> None:
        """Start a target's checks afresh (after its instance restarted)."""
        for state in self.states(target_id).values():
            self.add(target_id, state.check, state.context)

    async def run(self, stop: asyncio.Event, max_sleep: float = 1.0) -> None:
        """Run checks on the real clock until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:  # one bad callback must not stop every health check
                log.exception("health check round failed")
            dues = [s.next_due for t in self._targets.values() for s in t.checks.values()]
            pause = min([max_sleep, *(d - self._clock.monotonic() for d in dues)])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(pause, 0.01))
