"""``helmctl up`` supervises: a killed service comes back and the pipeline goes on; Ctrl+C is clean."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from tests.e2e.stack import start_stack


def _runs(base_url: str) -> int:
    state = httpx.get(f"{base_url}/state", timeout=5).json()
    return int(state["agents"]["classifier"]["metrics"].get("runs") or 0)


def _wait(predicate: object, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sigkilled_service_is_restarted_and_the_pipeline_goes_on(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    try:
        children = [p.pid for p in psutil.Process(stack.proc.pid).children(recursive=True)]
        _wait(lambda: _runs(stack.base_url) >= 3, 60, "runs counted by the observer")
        victim = stack.pids()["observer"]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed_at = _runs(stack.base_url)

        def restarted() -> bool:
            pid = stack.pids().get("observer")
            return (
                pid is not None and pid != victim and stack.refresh()["restarts"]["observer"] == 1
            )

        _wait(restarted, 30, "the observer restarted under a new pid")
        _wait(
            lambda: _runs(stack.base_url) >= killed_at + 5,
            60,
            "runs counted again after the restart",
        )
        assert "exited with code -9" in stack.log()
    finally:
        code = stack.stop()
    assert code == 0, stack.log()[-3000:]
    assert "Helm stopped." in stack.log()
    left = [
        pid
        for pid in children
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert left == [], f"processes left behind: {left}"
