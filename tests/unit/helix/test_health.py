"""Health checks follow Kubernetes probe semantics on a manual clock (no sleeping)."""

from __future__ import annotations

import asyncio

from helix import CheckType, HealthCheck, HealthChecker, HealthStatus, ManualClock


class Flaky:
    """A check whose answer the test sets."""

    def __init__(self) -> None:
        self.ok = True
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.ok


def make(clock: ManualClock, fn: Flaky, **kw: float) -> HealthChecker:
    checker = HealthChecker(clock)
    args = {
        "interval": 10,
        "timeout": 1,
        "failure_threshold": 3,
        "success_threshold": 2,
        "initial_delay": 5,
    } | kw
    checker.add(
        "i-0",
        HealthCheck(
            name="db",
            check_fn=fn,
            check_type=CheckType.LIVENESS,
            interval=args["interval"],
            timeout=args["timeout"],
            failure_threshold=int(args["failure_threshold"]),
            success_threshold=int(args["success_threshold"]),
            initial_delay=args["initial_delay"],
        ),
    )
    return checker


async def test_first_check_waits_for_initial_delay_then_runs_every_interval() -> None:
    clock, fn = ManualClock(), Flaky()
    checker = make(clock, fn)
    clock.advance(4.9)
    await checker.run_due()
    assert fn.calls == 0
    clock.advance(0.1)
    await checker.run_due()
    assert fn.calls == 1
    clock.advance(9.9)
    await checker.run_due()
    assert fn.calls == 1
    clock.advance(0.1)
    await checker.run_due()
    assert fn.calls == 2


async def test_unhealthy_exactly_at_failure_threshold_healthy_at_success_threshold() -> None:
    clock, fn = ManualClock(), Flaky()
    checker = make(clock, fn, initial_delay=0)
    seen: list[HealthStatus] = []
    for ok in [True, True, False, False]:
        fn.ok = ok
        await checker.run_due()
        seen.append(checker.status("i-0"))
        clock.advance(10)
    assert seen == [
        HealthStatus.UNKNOWN,
        HealthStatus.HEALTHY,
        HealthStatus.HEALTHY,
        HealthStatus.HEALTHY,
    ]
    fn.ok = False
    changes = await checker.run_due()  # third consecutive failure
    assert [c.new for c in changes] == [HealthStatus.UNHEALTHY]
    clock.advance(10)
    fn.ok = True
    assert await checker.run_due() == []  # one success is not enough (threshold 2)
    clock.advance(10)
    assert [c.new for c in await checker.run_due()] == [HealthStatus.HEALTHY]


async def test_a_success_resets_the_failure_count() -> None:
    clock, fn = ManualClock(), Flaky()
    checker = make(clock, fn, initial_delay=0, success_threshold=1)
    for ok in [False, False, True, False, False]:
        fn.ok = ok
        await checker.run_due()
        clock.advance(10)
    assert checker.status("i-0") is HealthStatus.HEALTHY


async def test_raising_and_timing_out_are_failures() -> None:
    clock = ManualClock()
    checker = HealthChecker(clock)

    async def boom() -> bool:
        raise ConnectionError("db down")

    async def hang() -> bool:
        await asyncio.Event().wait()
        return True

    checker.add("a", HealthCheck(name="boom", check_fn=boom, failure_threshold=1))
    checker.add("b", HealthCheck(name="hang", check_fn=hang, timeout=0.01, failure_threshold=1))
    changes = {c.target_id: c for c in await checker.run_due()}
    assert changes["a"].new is HealthStatus.UNHEALTHY and "db down" in str(changes["a"].error)
    assert changes["b"].new is HealthStatus.UNHEALTHY and "timed out" in str(changes["b"].error)


async def test_startup_check_gates_the_others_until_it_passes() -> None:
    clock, started, live = ManualClock(), Flaky(), Flaky()
    started.ok = False
    checker = HealthChecker(clock)
    checker.add(
        "i",
        HealthCheck(
            name="boot",
            check_fn=started,
            check_type=CheckType.STARTUP,
            interval=1,
            failure_threshold=30,
        ),
    )
    checker.add(
        "i", HealthCheck(name="live", check_fn=live, check_type=CheckType.LIVENESS, interval=1)
    )
    await checker.run_due()
    clock.advance(1)
    await checker.run_due()
    assert (started.calls, live.calls) == (2, 0)
    started.ok = True
    clock.advance(1)
    await checker.run_due()
    clock.advance(1)
    await checker.run_due()
    assert (started.calls, live.calls) == (3, 1)
