"""The ``anthropic`` provider drives the real SDK against a local Messages API server.

What a user of the provider would notice: the token counts the server billed, a time to first
token that reflects a slow model, how many retries a call took and why a call failed for good.
Back-off waits are recorded instead of slept, so the suite stays fast.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from services.worker.llm.anthropic_provider import AnthropicProvider
from services.worker.llm.base import LLMError, LLMRequest
from tests.support.messages_api import (
    MessagesAPI,
    hang,
    ok,
    slow_first_token,
    status,
    stream_error,
)

MODEL = "claude-haiku-4-5"
BASE_S, MAX_S = 0.5, 8.0


class RecordedSleep:
    """Stands in for ``asyncio.sleep``: keeps the back-off the provider asked for, waits none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def server() -> Iterator[MessagesAPI]:
    with MessagesAPI() as api:
        yield api


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
async def provider(server: MessagesAPI, sleep: RecordedSleep) -> AsyncIterator[AnthropicProvider]:
    llm = AnthropicProvider(
        "test-key",
        base_url=server.base_url,
        timeout_s=5.0,
        backoff_base_s=BASE_S,
        backoff_max_s=MAX_S,
        sleep=sleep,
        rng=lambda: 0.5,
    )
    try:
        yield llm
    finally:
        await llm.close()


def request(max_retries: int = 2) -> LLMRequest:
    return LLMRequest(
        system="You are terse.",
        messages=[("user", "What is six times seven?")],
        model=MODEL,
        max_tokens=64,
        max_retries=max_retries,
    )


async def test_streamed_completion_carries_the_servers_exact_usage(
    server: MessagesAPI, provider: AnthropicProvider
) -> None:
    server.script(ok("The answer is 42.", input_tokens=1234, output_tokens=56))

    done = await provider.complete(request())

    assert (done.text, done.input_tokens, done.output_tokens) == ("The answer is 42.", 1234, 56)
    assert (done.provider, done.model, done.stop_reason, done.retries) == (
        "anthropic",
        MODEL,
        "end_turn",
        0,
    )
    assert done.ttft_ms is not None and 0 < done.ttft_ms <= done.latency_ms
    sent = server.message_requests[0]
    assert sent.streamed and sent.body["system"] == "You are terse."
    assert sent.body["messages"] == [{"role": "user", "content": "What is six times seven?"}]
    assert "temperature" not in sent.body  # API 2026-10-21 rejects sampling parameters


async def test_a_slow_first_token_shows_in_ttft(
    server: MessagesAPI, provider: AnthropicProvider
) -> None:
    server.script(slow_first_token(0.3, "late but right", input_tokens=5, output_tokens=4))

    done = await provider.complete(request())

    assert done.ttft_ms is not None and done.ttft_ms >= 300
    assert done.latency_ms >= done.ttft_ms
    assert (done.text, done.input_tokens, done.output_tokens) == ("late but right", 5, 4)


async def test_a_rate_limit_is_retried_after_the_servers_retry_after(
    server: MessagesAPI, provider: AnthropicProvider, sleep: RecordedSleep
) -> None:
    server.script(status(429, retry_after=0), ok("fine", input_tokens=3, output_tokens=2))

    done = await provider.complete(request())

    assert (done.text, done.retries) == ("fine", 1)
    assert sleep.delays == [0.0]
    assert len(server.message_requests) == 2


async def test_a_server_error_is_retried_with_jittered_backoff(
    server: MessagesAPI, provider: AnthropicProvider, sleep: RecordedSleep
) -> None:
    server.script(status(500), status(503), ok("third time"))

    done = await provider.complete(request(max_retries=2))

    assert (done.text, done.retries) == ("third time", 2)
    assert sleep.delays == [BASE_S * 0.5, BASE_S * 2 * 0.5]  # rng is pinned at 0.5


async def test_persistent_overload_fails_as_overloaded_after_every_retry(
    server: MessagesAPI, provider: AnthropicProvider, sleep: RecordedSleep
) -> None:
    server.default = status(529)

    with pytest.raises(LLMError) as failed:
        await provider.complete(request(max_retries=3))

    assert (failed.value.outcome, failed.value.retries) == ("overloaded", 3)
    assert len(server.message_requests) == 4
    assert len(sleep.delays) == 3


async def test_an_overload_inside_the_stream_is_retried(
    server: MessagesAPI, provider: AnthropicProvider
) -> None:
    server.script(stream_error("overloaded_error"), ok("recovered", output_tokens=1))

    done = await provider.complete(request())

    assert (done.text, done.output_tokens, done.retries) == ("recovered", 1, 1)


async def test_a_bad_request_fails_at_once(
    server: MessagesAPI, provider: AnthropicProvider, sleep: RecordedSleep
) -> None:
    server.default = status(400, message="messages: at least one message is required")

    with pytest.raises(LLMError) as failed:
        await provider.complete(request(max_retries=3))

    assert (failed.value.outcome, failed.value.retries) == ("bad_request", 0)
    assert "at least one message" in str(failed.value)
    assert len(server.message_requests) == 1 and sleep.delays == []


async def test_a_rejected_key_is_an_error_and_not_retried(
    server: MessagesAPI, provider: AnthropicProvider
) -> None:
    server.default = status(401)

    with pytest.raises(LLMError) as failed:
        await provider.complete(request(max_retries=3))

    assert (failed.value.outcome, failed.value.retries) == ("error", 0)
    assert len(server.message_requests) == 1


async def test_a_hung_server_times_out_each_attempt(
    server: MessagesAPI, sleep: RecordedSleep
) -> None:
    server.default = hang(30)
    llm = AnthropicProvider("test-key", base_url=server.base_url, timeout_s=0.3, sleep=sleep)
    try:
        with pytest.raises(LLMError) as failed:
            await llm.complete(request(max_retries=1))
    finally:
        await llm.close()

    assert (failed.value.outcome, failed.value.retries) == ("timeout", 1)
    assert len(server.message_requests) == 2


async def test_no_server_at_all_is_an_error_after_retries(sleep: RecordedSleep) -> None:
    with socket.socket() as probe:  # a port nobody listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = AnthropicProvider("test-key", base_url=f"http://127.0.0.1:{port}", sleep=sleep)
    try:
        with pytest.raises(LLMError) as failed:
            await llm.complete(request(max_retries=1))
    finally:
        await llm.close()

    assert (failed.value.outcome, failed.value.retries) == ("error", 1)


async def test_the_server_answers_the_sdk_without_streaming_too(server: MessagesAPI) -> None:
    """The test server itself: other suites rely on its plain and count_tokens answers."""
    server.script(ok("plain", input_tokens=77, output_tokens=8))
    server.count_tokens_answer = 77
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=server.base_url, max_retries=0)
    try:
        message = await client.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        counted = await client.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        await client.close()

    assert (message.usage.input_tokens, message.usage.output_tokens) == (77, 8)
    assert message.content[0].type == "text" and message.content[0].text == "plain"
    assert counted.input_tokens == 77
    assert [r.path for r in server.requests] == ["/v1/messages", "/v1/messages/count_tokens"]
