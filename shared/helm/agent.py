"""What a user's agent function may ask for: the run context, as a protocol.

The worker hands a concrete context to each run; user code types against this protocol, so it
depends on ``helm`` only. ``await ctx.llm.complete(prompt)`` calls the configured model (Claude,
or the offline provider) and records usage by itself; ``ctx.report_confidence(x)`` feeds the
confidence drift rule.
"""

from __future__ import annotations

from typing import Literal, Protocol

Role = Literal["user", "assistant"]


class LLM(Protocol):
    async def complete(
        self,
        prompt: str,
        *,
        system: str = "",
        task: str = "chat",
        history: list[tuple[Role, str]] | None = None,
    ) -> str: ...


class RunContext(Protocol):
    agent_id: str
    llm: LLM
    batch_size: int
    max_retries: int
    probe: bool

    def report_confidence(self, value: float) -> None: ...
