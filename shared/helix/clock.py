"""Clocks: the one source of time for every helix component.

Every time-dependent class takes a ``clock`` so tests drive time by hand instead of sleeping.
``Clock.monotonic()`` orders events and measures intervals; ``Clock.time()`` is wall time (UTC
seconds since the epoch) used for budget periods and timestamps. ``ManualClock`` advances both
together, so a test that moves it by 60 s sees exactly 60 s pass everywhere.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What helix needs to know about time."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (for tests)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 0.0

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._wall += seconds
        self._mono += seconds

    def set_time(self, wall: float) -> None:
        """Jump wall time (monotonic time moves by the same amount, never backwards)."""
        self.advance(max(0.0, wall - self._wall))


SYSTEM_CLOCK = SystemClock()
