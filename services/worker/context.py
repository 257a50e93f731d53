"""What an agent gets for one run: an LLM client that meters itself, and a place for results.

Agents never write telemetry: the worker reads the meter after the run and emits one
``RunCompleted``. Usage of every call (retries included) is summed; the first call's time to
first token is the run's; the agent may report its confidence and the items it rejected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.worker.llm.base import Completion, LLMError, LLMRequest, Provider, Role

Gate = Callable[[LLMRequest], Awaitable[Callable[[int], Awaitable[None]]]]


@dataclass
class Meter:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0
    ttft_ms: float | None = None
    model: str = ""

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.input_tokens += c.input_tokens
        self.output_tokens += c.output_tokens
        self.retries += c.retries
        self.model = c.model
        if self.ttft_ms is None and c.ttft_ms is not None:
            self.ttft_ms = c.ttft_ms


@dataclass(frozen=True)
class AgentSettings:
    """Per-agent LLM settings from configuration, with the constraints in force for this run."""

    model: str
    max_tokens: int = 1024
    temperature: float = 0.0
    max_retries: int = 2


class MeteredLLM:
    """The LLM client agents call; it records usage by itself and passes the budget gate."""

    def __init__(
        self, provider: Provider, settings: AgentSettings, gate: Gate | None = None
    ) -> None:
        self.provider, self.settings, self.gate = provider, settings, gate
        self.meter = Meter(model=settings.model)

    async def complete(
        self,
        prompt: str,
        *,
        system: str = "",
        task: str = "chat",
        history: list[tuple[Role, str]] | None = None,
    ) -> str:
        s = self.settings
        request = LLMRequest(
            system=system,
            messages=[*(history or []), ("user", prompt)],
            model=s.model,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            max_retries=s.max_retries,
            task=task,
        )
        settle = await self.gate(request) if self.gate else None
        try:
            completion = await self.provider.complete(request)
        except LLMError as exc:
            self.meter.retries += exc.retries
            if settle:
                await settle(0)
            raise
        self.meter.add(completion)
        if settle:
            await settle(completion.input_tokens + completion.output_tokens)
        return completion.text


@dataclass
class RunContext:
    """Handed to an agent for one run (``ctx`` in a user agent's signature)."""

    agent_id: str
    llm: MeteredLLM
    batch_size: int
    max_retries: int
    malformed_ratio: float = 0.0
    probe: bool = False
    confidence: float | None = None
    rejected: int = 0
    retries: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    def report_confidence(self, value: float) -> None:
        self.confidence = max(0.0, min(1.0, float(value)))
