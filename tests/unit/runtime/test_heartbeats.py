"""Liveness and readiness of a worker process, judged from its heartbeats."""

from __future__ import annotations

import pytest

from helix import InstanceStatus
from helm import contracts as c
from services.runtime.handlers import HeartbeatBook, NoHeartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def running(pid: int, started_at: float) -> InstanceStatus:
    return InstanceStatus("a-0", "a", 0, state="running", pid=pid, started_at=started_at)


def beat(pid: int, ts: float, state: str = "running") -> c.InstanceHeartbeat:
    return c.InstanceHeartbeat(agent_id="a", instance_id="a-0", pid=pid, ts=ts, state=state)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_silent_process_is_dead_and_the_reason_says_for_how_long(clock: Clock) -> None:
    book = HeartbeatBook(timeout_s=6, startup_grace_s=30, clock=clock)
    book.record(beat(pid=7, ts=clock.now))
    clock.now += 6.0
    assert book.alive(running(7, started_at=990))
    clock.now += 1.5
    with pytest.raises(NoHeartbeat, match=r"no heartbeat for 7.5 s \(limit 6 s\)"):
        book.alive(running(7, started_at=990))


def test_a_new_process_has_its_start_up_grace_and_is_not_kept_alive_by_its_predecessor(
    clock: Clock,
) -> None:
    book = HeartbeatBook(timeout_s=6, startup_grace_s=30, clock=clock)
    book.record(beat(pid=7, ts=clock.now))  # the previous process's last words
    replacement = running(8, started_at=clock.now)
    clock.now += 20
    assert book.alive(replacement) and not book.ready(replacement)
    clock.now += 11
    with pytest.raises(NoHeartbeat):
        book.alive(replacement)


def test_only_a_fresh_heartbeat_that_takes_work_makes_an_instance_ready(clock: Clock) -> None:
    book = HeartbeatBook(timeout_s=6, startup_grace_s=30, clock=clock)
    inst = running(7, started_at=990)
    book.record(beat(pid=7, ts=clock.now, state="paused"))
    assert not book.ready(inst)
    book.record(beat(pid=7, ts=clock.now, state="probing"))
    assert book.ready(inst)
    book.record(beat(pid=7, ts=clock.now - 30, state="running"))  # late, out of order: ignored
    assert book.ready(inst)
    clock.now += 7
    assert not book.ready(inst)
