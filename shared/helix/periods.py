"""Token periods and their UTC boundaries.

Each period instance has a key (``2025-01-31T13`` hourly, ``2025-01-31`` daily, ``2025-W05``
weekly with ISO weeks starting Monday, ``2025-01`` monthly). Counters are stored per key, so a new
period starts from zero by construction: nothing has to reset them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum


class TokenPeriod(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def period_bounds(period: TokenPeriod, wall_time: float) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of the period containing ``wall_time``, in UTC."""
    now = datetime.fromtimestamp(wall_time, tz=UTC)
    if period is TokenPeriod.HOURLY:
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is TokenPeriod.DAILY:
        return day, day + timedelta(days=1)
    if period is TokenPeriod.WEEKLY:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    return first, _next_month(first)


def period_key(period: TokenPeriod, wall_time: float) -> str:
    """The identifier of the period instance containing ``wall_time``."""
    start, _ = period_bounds(period, wall_time)
    if period is TokenPeriod.HOURLY:
        return start.strftime("%Y-%m-%dT%H")
    if period is TokenPeriod.DAILY:
        return start.strftime("%Y-%m-%d")
    if period is TokenPeriod.WEEKLY:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m")


def counter_ttl(period: TokenPeriod, wall_time: float) -> int:
    """Seconds to keep a period's counter: until its end plus one more period, for reporting."""
    start, end = period_bounds(period, wall_time)
    return int((end - datetime.fromtimestamp(wall_time, tz=UTC)).total_seconds()) + int(
        (end - start).total_seconds()
    )
