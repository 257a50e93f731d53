"""``HelmClient`` and ``@client.agent(...)``: how users bring their own agents to Helm.

```python
from helm import HelmClient
client = HelmClient()
@client.agent(name="my-agent", helix={"min_instances": 2, "max_instances": 10, "memory_limit_mb": 512})
async def my_agent(query: str):
    return "ok"
```

The decorator only registers the agent (the function stays callable as it was). ``helmctl
worker myapp:client --agent my-agent`` runs one instance of it; the runtime starts instances the
same way, honouring the ``helix`` dict. An agent function receives its input and, if its
signature asks for a second parameter (or one named ``ctx``), a ``RunContext`` with an LLM client
that meters itself: the agent emits the same telemetry as the built-in ones without a line of
telemetry code.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pydantic import SecretStr

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HELIX_KEYS = {
    "min_instances",
    "max_instances",
    "memory_limit_mb",
    "cpu_limit_percent",
    "target_cpu_percent",
    "target_memory_percent",
    "scale_up_cooldown",
    "scale_down_cooldown",
    "scale_up_step",
    "scale_down_step",
    "target_backlog_per_instance",
    "target_tokens_per_second_per_instance",
    "target_p95_latency_ms",
}


@dataclass(frozen=True)
class AgentSpec:
    """A registered agent: its function and how Helm should run it."""

    name: str
    service: str
    fn: Callable[..., Awaitable[Any]]
    wants_context: bool
    model: str
    max_tokens: int
    helix: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    async def __call__(self, query: str, ctx: Any) -> str:
        result = await (self.fn(query, ctx) if self.wants_context else self.fn(query))
        return result if isinstance(result, str) else str(result)


class HelmClient:
    """Registers agents; ``api_key`` is optional (used as the Claude key when given)."""

    def __init__(self, api_key: str | None = None, *, service: str = "default") -> None:
        self.api_key = SecretStr(api_key) if api_key else None
        self.default_service = service
        self.agents: dict[str, AgentSpec] = {}

    def agent(
        self,
        name: str,
        *,
        service: str | None = None,
        helix: dict[str, Any] | None = None,
        model: str = "claude-haiku-4-5",
        max_tokens: int = 1024,
        description: str = "",
    ) -> Callable[[F], F]:
        """Register the decorated async function as agent ``name``."""
        if not NAME.match(name):
            raise ValueError(f"agent name {name!r}: letters, digits, '.', '_' or '-', at most 64")
        unknown = set(helix or {}) - HELIX_KEYS
        if unknown:
            raise ValueError(
                f"unknown helix settings {sorted(unknown)}; known: {sorted(HELIX_KEYS)}"
            )
        if name in self.agents:
            raise ValueError(f"agent {name!r} is already registered")

        def register(fn: F) -> F:
            if not inspect.iscoroutinefunction(cast(Any, fn)):
                raise TypeError(f"agent {name!r} must be an async function")
            self.agents[name] = AgentSpec(
                name=name,
                service=service or self.default_service,
                fn=fn,
                wants_context=_wants_context(fn),
                model=model,
                max_tokens=max_tokens,
                helix=dict(helix or {}),
                description=description or (inspect.getdoc(fn) or "").split("\n")[0],
            )
            return fn

        return register


def _wants_context(fn: Callable[..., Any]) -> bool:
    params = list(inspect.signature(fn).parameters.values())
    return len(params) >= 2 or any(p.name == "ctx" for p in params)


def load_client(path: str) -> HelmClient:
    """Import ``module:attribute`` and return the ``HelmClient`` it names."""
    import importlib

    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected MODULE:CLIENT, got {path!r}")
    client = getattr(importlib.import_module(module_name), attr, None)
    if not isinstance(client, HelmClient):
        raise ValueError(f"{path!r} is not a HelmClient")
    return client
