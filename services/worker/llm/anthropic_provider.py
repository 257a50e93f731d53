"""The ``anthropic`` provider: Claude through the official SDK, with Helm's own retries.

What a ``Completion`` from here guarantees:

- ``input_tokens`` / ``output_tokens`` are exactly what the server reported in the stream's usage
  blocks (``message_start``, then the cumulative ``message_delta``); nothing is estimated.
- ``latency_ms`` is the whole call as the agent experienced it, back-off and retries included;
  ``ttft_ms`` runs from the same start to the first text delta, so ``ttft_ms <= latency_ms``.
- ``retries`` is the number of attempts before the one that succeeded.

Every call streams (``messages.create(stream=True)``) so the first token can be timed. Each
attempt is bounded by ``timeout_s`` end to end, not only per socket read. The SDK's retries are
off (``max_retries=0``): ``retry.py`` classifies each failure and decides whether and when to try
again, up to ``LLMRequest.max_retries``; when they are spent ``LLMError`` says why and how many
retries were made.

``LLMRequest.temperature`` is not sent: SDK 2.x speaks API version 2026-10-21, which removed
sampling parameters and answers 400 to any of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anthropic
from anthropic.types import (
    AssistantMessageParam,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextDelta,
    UserMessageParam,
)

from services.worker.llm.base import Completion, LLMError, LLMRequest, Role
from services.worker.llm.retry import Failure, IncompleteResponse, classify, retry_delay

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Stream:
    """What one streamed attempt delivered, folded event by event."""

    started: float
    clock: Clock
    parts: list[str] = field(default_factory=list)
    model: str | None = None
    message_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    ttft: float | None = None
    finished: bool = False
    # Prompt-cache reads and writes are billed apart from input_tokens; kept for cost, not summed.
    cache_tokens: dict[str, int] = field(default_factory=dict)

    def add(self, event: RawMessageStreamEvent) -> None:
        if isinstance(event, RawMessageStartEvent):
            self._start(event)
        elif isinstance(event, RawContentBlockDeltaEvent) and isinstance(event.delta, TextDelta):
            self._text(event.delta.text)
        elif isinstance(event, RawMessageDeltaEvent):
            self._delta(event)
        elif isinstance(event, RawMessageStopEvent):
            self.finished = True

    def _start(self, event: RawMessageStartEvent) -> None:
        self.model, self.message_id = event.message.model, event.message.id
        usage = event.message.usage
        self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
        self._cache(usage.cache_read_input_tokens, usage.cache_creation_input_tokens)

    def _text(self, text: str) -> None:
        if self.ttft is None:
            self.ttft = self.clock() - self.started
        self.parts.append(text)

    def _delta(self, event: RawMessageDeltaEvent) -> None:
        # message_delta usage is cumulative, so it replaces rather than adds to message_start's.
        self.output_tokens = event.usage.output_tokens
        if event.usage.input_tokens is not None:
            self.input_tokens = event.usage.input_tokens
        self.stop_reason = event.delta.stop_reason
        self._cache(event.usage.cache_read_input_tokens, event.usage.cache_creation_input_tokens)

    def _cache(self, read: int | None, created: int | None) -> None:
        for key, value in (
            ("cache_read_input_tokens", read),
            ("cache_creation_input_tokens", created),
        ):
            if value:
                self.cache_tokens[key] = value


class AnthropicProvider:
    """Claude via ``AsyncAnthropic``; see the module docstring for what it guarantees."""

    name = "anthropic"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        clock: Clock = time.perf_counter,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        wall_clock: Clock = time.time,
    ) -> None:
        # max_retries=0: Helm counts, classifies and paces retries itself (retry.py).
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )
        self._timeout_s = timeout_s
        self._backoff = (backoff_base_s, backoff_max_s)
        self._clock, self._sleep, self._rng, self._wall_clock = clock, sleep, rng, wall_clock

    async def complete(self, request: LLMRequest) -> Completion:
        started = self._clock()
        retries = 0
        while True:
            try:
                stream = await self._attempt(request, started)
            except Exception as exc:
                failure = classify(exc, now=self._wall_clock())
                if failure is None:
                    raise
                await self._before_retry(failure, retries, request, exc)
                retries += 1
                continue
            return self._completion(request, stream, started, retries)

    async def close(self) -> None:
        await self._client.close()

    async def _attempt(self, request: LLMRequest, started: float) -> _Stream:
        """One streamed request, bounded end to end by ``timeout_s``."""
        folded = _Stream(started=started, clock=self._clock)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._stream(request, folded)
        except TimeoutError as exc:
            raise TimeoutError(f"no complete answer within {self._timeout_s:g} s") from exc
        if not folded.finished:
            raise IncompleteResponse("the stream ended before message_stop")
        return folded

    async def _stream(self, request: LLMRequest, folded: _Stream) -> None:
        events = await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            system=request.system or anthropic.omit,
            messages=[_message(role, text) for role, text in request.messages],
            stream=True,
        )
        async with events:
            async for event in events:
                folded.add(event)

    async def _before_retry(
        self, failure: Failure, retries: int, request: LLMRequest, exc: Exception
    ) -> None:
        """Wait before the next attempt, or raise ``LLMError`` if there is to be none."""
        if not failure.retryable or retries >= request.max_retries:
            log.warning(
                "llm call failed: %s (%s) after %d retries", failure.kind, failure.message, retries
            )
            raise LLMError(failure.kind, failure.message, retries=retries) from exc
        base_s, cap_s = self._backoff
        delay = retry_delay(failure, retries, base_s=base_s, cap_s=cap_s, rng=self._rng)
        log.info(
            "llm call %s (%s); retry %d in %.3f s",
            failure.kind,
            failure.message,
            retries + 1,
            delay,
        )
        await self._sleep(delay)

    def _completion(
        self, request: LLMRequest, stream: _Stream, started: float, retries: int
    ) -> Completion:
        latency = self._clock() - started
        return Completion(
            text="".join(stream.parts),
            model=stream.model or request.model,
            provider=self.name,
            input_tokens=stream.input_tokens,
            output_tokens=stream.output_tokens,
            latency_ms=latency * 1000,
            ttft_ms=None if stream.ttft is None else stream.ttft * 1000,
            retries=retries,
            stop_reason=stream.stop_reason,
            extra={"message_id": stream.message_id, **stream.cache_tokens},
        )


def _message(role: Role, text: str) -> MessageParam:
    if role == "assistant":
        return AssistantMessageParam(role="assistant", content=text)
    return UserMessageParam(role="user", content=text)
