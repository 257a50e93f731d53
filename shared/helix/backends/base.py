"""What a backend provides: launching one instance and controlling what it launched."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class InstanceContext:
    """Who an instance is; also given to it as HELIX_AGENT_ID / HELIX_INSTANCE_ID / _INDEX."""

    agent_id: str
    instance_id: str
    index: int


@dataclass(frozen=True)
class AgentSpec:
    """What to run for an agent: a command (argv), a "module:function" or a callable."""

    agent_id: str
    command: Sequence[str] | None = None
    target: str | None = None  # "package.module:function"
    function: Callable[..., Any] | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    cpu_percent: float
    rss_mb: float


class InstanceHandle(Protocol):
    @property
    def pid(self) -> int | None: ...
    async def wait(self) -> int: ...
    async def terminate(self) -> None: ...
    async def kill(self) -> None: ...
    def sample(self) -> Sample | None: ...


class Backend(Protocol):
    name: str

    async def launch(self, spec: AgentSpec, ctx: InstanceContext) -> InstanceHandle: ...


def instance_env(ctx: InstanceContext) -> dict[str, str]:
    return {
        "HELIX_AGENT_ID": ctx.agent_id,
        "HELIX_INSTANCE_ID": ctx.instance_id,
        "HELIX_INSTANCE_INDEX": str(ctx.index),
    }


def resolve(target: str) -> Callable[..., Any]:
    """Import "package.module:function" (attribute paths such as "mod:Class.method" too)."""
    module_name, _, qualname = target.partition(":")
    if not qualname:
        raise ValueError(f"expected 'module:function', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


def importable_name(fn: Callable[..., Any]) -> str | None:
    """ "module:qualname" if ``fn`` can be imported by a fresh interpreter, else None."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    try:
        return f"{module}:{qualname}" if resolve(f"{module}:{qualname}") is fn else None
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def wants_context(fn: Callable[..., Any]) -> bool | None:
    """True: call fn(ctx); False: call fn(); None: a request handler, to be hosted."""
    required = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not required:
        return False
    first = required[0]
    is_ctx = first.name in ("ctx", "context") or first.annotation in (
        InstanceContext,
        "InstanceContext",
    )
    return True if len(required) == 1 and is_ctx else None


async def run_entry(fn: Callable[..., Any], ctx: InstanceContext, stop: Any) -> None:
    """Run an agent callable as an instance body; a handler is hosted until ``stop`` is set."""
    mode = wants_context(fn)
    if mode is None:
        await stop.wait()
        return
    result = fn(ctx) if mode else fn()
    if inspect.isawaitable(result):
        await result
