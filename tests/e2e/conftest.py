"""One stack for the e2e tests that only watch and poke it; tests that kill things start their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import RunningStack, start_stack


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield stack
    finally:
        code = stack.stop()
        assert code == 0, f"helmctl up exited with {code}:\n{stack.log()[-4000:]}"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    out = Path(__file__).resolve().parents[2] / "test-output"
    out.mkdir(exist_ok=True)
    return out
