"""The worker's obedience, without I/O: what the next run may do."""

from __future__ import annotations

import asyncio

from helm import contracts as c
from services.worker.control import ControlState, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spaces_runs_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(clock)
    bucket.set_rate(60)  # one a second
    assert bucket.wait_time() == 0
    assert bucket.wait_time() == 1.0
    clock.now += 0.5
    assert abs(bucket.wait_time() - 0.5) < 1e-9
    clock.now += 0.5
    assert bucket.wait_time() == 0


def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(Clock())
    assert [bucket.wait_time() for _ in range(5)] == [0.0] * 5


def test_constraints_and_anomaly_shape_the_next_run() -> None:
    clock = Clock()
    state = ControlState("a", clock)
    assert state.batch_size(5) == 5 and state.max_retries(2) == 2
    state.apply(
        c.InjectAnomaly(
            agent_id="a", ts=clock.now, duration_s=10, batch_multiplier=8, malformed_ratio=0.3
        )
    )
    assert state.batch_size(5) == 40 and state.malformed_ratio() == 0.3
    state.apply(c.ConstrainAgent(agent_id="a", batch_size=2, max_retries=1))
    assert state.batch_size(5) == 2 and state.max_retries(2) == 1
    clock.now += 11
    assert state.malformed_ratio() == 0.0


def test_commands_for_other_agents_are_ignored() -> None:
    state = ControlState("a")
    assert not state.apply(c.PauseAgent(agent_id="b"))
    assert not state.paused


async def test_a_paused_worker_waits_until_resumed() -> None:
    state = ControlState("a")
    state.apply(c.PauseAgent(agent_id="a"))
    stop = asyncio.Event()
    waiter = asyncio.create_task(state.wait_runnable(stop))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    state.apply(c.ResumeAgent(agent_id="a"))
    assert await asyncio.wait_for(waiter, 1) is True


async def test_stop_releases_a_paused_worker() -> None:
    state = ControlState("a")
    state.apply(c.PauseAgent(agent_id="a"))
    stop = asyncio.Event()
    waiter = asyncio.create_task(state.wait_runnable(stop))
    stop.set()
    assert await asyncio.wait_for(waiter, 1) is False
