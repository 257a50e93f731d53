"""Every helix snippet of HELIX_API.md runs as written and means what the page says."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from helix import accounting
from tests.waiting import eventually

# The API contract sits in shared/ beside the repository.
_BESIDE = Path(__file__).resolve().parents[4] / "shared" / "HELIX_API.md"
API = _BESIDE if _BESIDE.exists() else Path("/work/shared/HELIX_API.md")


def snippets() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", API.read_text(), flags=re.S)
    return [b for b in blocks if "from helix import" in b]


async def my_agent_function() -> None:
    """An agent body that runs until it is stopped."""
    await asyncio.Event().wait()


async def run_snippet(code: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, "<HELIX_API.md>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if asyncio.iscoroutine(result):
        await result


@pytest.fixture
async def memory_accounting(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.delenv("HELM_REDIS_URL", raising=False)
    monkeypatch.setenv("HELIX_BACKEND", "inprocess")
    await accounting.reset()
    yield
    await accounting.reset()


def test_the_helm_client_snippet_runs_as_written_and_keeps_the_helix_dict() -> None:
    blocks = re.findall(r"```python\n(.*?)```", API.read_text(), flags=re.S)
    [code] = [b for b in blocks if "from helm import HelmClient" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, "<HELIX_API.md>", "exec"), namespace)
    spec = namespace["client"].agents["my-agent"]
    assert spec.helix == {"min_instances": 2, "max_instances": 10, "memory_limit_mb": 512}
    assert asyncio.run(namespace["my_agent"]("hi")) == "ok"


def test_all_seven_helix_snippets_are_found() -> None:
    assert len(snippets()) == 7


async def test_every_snippet_runs_as_written(memory_accounting: None) -> None:
    namespace: dict[str, Any] = {"my_agent_function": my_agent_function}
    for code in snippets():
        await run_snippet(code, namespace)
    runtime = namespace["runtime"]
    try:

        async def two_running() -> bool:
            status = await runtime.get_agent_status("my-agent")
            return bool(status.running_instances == 2)

        await eventually(two_running, what="2 instances of my-agent")
        status = await runtime.get_agent_status("my-agent")
        assert [i.instance_id for i in status.instances] == ["my-agent-0", "my-agent-1"]
    finally:
        await runtime.shutdown()
    assert namespace["desired"] == 3
    assert namespace["tokens"] == 1
    assert namespace["health_check"].initial_delay == 5
    assert namespace["stats"]["total_requests"] == 1
    assert namespace["metrics"]["requests"] == 1


async def test_budget_snippet_reports_the_named_fields(memory_accounting: None) -> None:
    namespace: dict[str, Any] = {}
    budget_code = next(s for s in snippets() if "get_token_budget_manager" in s)
    await run_snippet(budget_code, namespace)
    (status,) = namespace["status"]
    assert (status.limit, status.used, status.remaining) == (1_000_000, 0, 1_000_000)
    assert status.utilization == 0.0
    assert status.alert_level == "none"
    assert status.resets_at > status.period_start
    assert (status.resets_at - status.period_start).total_seconds() == 86_400
