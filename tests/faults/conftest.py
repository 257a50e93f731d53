"""Each fault test gets its own rig (stack, broker, Redis, load), torn down cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.rig import REPORTS, Rig, start_rig, stop_rig


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTS:
        terminalreporter.section("faults")
        for line in REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await start_rig(tmp_path)
    try:
        yield r
    finally:
        code = await stop_rig(r)
        assert code == 0, r.stack.log()[-3000:]
