"""Token counting is offline and exact for OpenAI models, honest about Claude estimates."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest

from helix import TokenCounter
from helix.encodings import encoding_name_for_model


def test_known_counts_for_gpt4_and_gpt4o() -> None:
    counter = TokenCounter()
    assert counter.count_tokens("Hello", model="gpt-4") == 1
    assert counter.count_tokens("Hello world, how are you today?", model="gpt-4") == 8
    assert counter.count_tokens("<|endoftext|>", model="gpt-4") > 1  # counted as text
    assert encoding_name_for_model("gpt-4o-mini") == "o200k_base"
    assert encoding_name_for_model("gpt-4-0613") == "cl100k_base"


def test_chat_messages_include_openai_overhead() -> None:
    counter = TokenCounter()
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hello", "name": "bob"},
    ]
    # OpenAI cookbook figure for gpt-4: 3 per message, 1 per name, 3 to prime the reply
    content = sum(counter.count_tokens(v, "gpt-4") for m in messages for v in m.values())
    assert counter.count_messages_tokens(messages, model="gpt-4") == content + 2 * 3 + 1 + 3


def test_claude_without_a_key_is_an_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = TokenCounter().count("Hello there, Claude", model="claude-sonnet-4-5")
    assert result.estimated and result.tokens >= TokenCounter().count_tokens("Hello there, Claude")


def test_claude_with_a_client_uses_the_count_tokens_endpoint() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/messages/count_tokens"
        return httpx2.Response(200, json={"input_tokens": 42})

    client = anthropic.Anthropic(
        api_key="test", http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    result = TokenCounter(anthropic_client=client).count("Hi", model="claude-sonnet-4-5")
    assert (result.tokens, result.estimated) == (42, False)
    assert seen[0]["model"] == "claude-sonnet-4-5"
