"""The provider interface every agent calls, and the errors it raises.

A provider turns an ``LLMRequest`` into a ``Completion`` with the real token usage, the measured
latency and time to first token, and how many retries it took; or raises ``LLMError`` whose
``outcome`` classifies the failure (timeout, rate_limited, overloaded, bad_request, error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["user", "assistant"]
FailureKind = Literal["timeout", "rate_limited", "overloaded", "bad_request", "error"]


@dataclass(frozen=True)
class LLMRequest:
    """One call: a system prompt, the conversation, and the agent's model settings."""

    system: str
    messages: list[tuple[Role, str]]
    model: str
    max_tokens: int = 1024
    temperature: float = 0.0
    max_retries: int = 2
    task: str = "chat"  # what the offline provider should answer: classify, summarise, chat


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    ttft_ms: float | None = None
    retries: int = 0
    stop_reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class LLMError(Exception):
    """A call that failed for good, after its retries; ``outcome`` says why."""

    def __init__(self, outcome: FailureKind, message: str, retries: int = 0) -> None:
        super().__init__(message)
        self.outcome: FailureKind = outcome
        self.retries = retries


class Provider(Protocol):
    """What agents call. ``name`` is reported in every event (``anthropic``, ``offline``)."""

    name: str

    async def complete(self, request: LLMRequest) -> Completion: ...

    async def close(self) -> None: ...
