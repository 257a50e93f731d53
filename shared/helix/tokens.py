"""Token counting: the model's real tokenizer, offline, and honest when it can only estimate.

OpenAI-family models are counted with their tiktoken encoding (see ``helix.encodings``; no
network). Claude models are counted by Anthropic's count-tokens endpoint when an API key is set
(or a client is given); otherwise, or if that call fails, the count is the cl100k count scaled by
``CLAUDE_ESTIMATE_FACTOR`` and the result says ``estimated=True``. ``count_tokens`` returns the
int; ``count`` returns the ``TokenCount`` with the provenance.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from helix.encodings import encoding_name_for_model, get_encoding

log = logging.getLogger(__name__)

# Claude's tokenizer yields somewhat more tokens than cl100k for English text; over-estimating
# is the safe side for budgets.
CLAUDE_ESTIMATE_FACTOR = 1.15
# OpenAI's documented chat overhead: every message costs 3 tokens, a name 1 more, and the
# reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

Message = Mapping[str, Any]


@dataclass(frozen=True)
class TokenCount:
    """A token count and where it came from."""

    tokens: int
    estimated: bool
    method: str  # "tiktoken:<encoding>", "anthropic", or "estimate:<encoding>"


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):  # content blocks: [{"type": "text", "text": ...}]
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, Mapping))
    return str(content)


class TokenCounter:
    """Counts tokens for a model. Thread-safe; encodings are shared per process."""

    def __init__(self, anthropic_client: Any | None = None, default_model: str = "gpt-4") -> None:
        self._anthropic = anthropic_client
        self._default_model = default_model

    def count_tokens(self, text: str, model: str | None = None) -> int:
        """Tokens in ``text`` for ``model``."""
        return self.count(text, model).tokens

    def count(self, text: str, model: str | None = None) -> TokenCount:
        """Tokens in ``text`` for ``model``, with whether the figure is an estimate."""
        model = model or self._default_model
        if is_claude(model):
            return self._count_claude([{"role": "user", "content": text}], model, overhead=0)
        name = encoding_name_for_model(model)
        # encode_ordinary: special-token text in user content is counted as text, not rejected.
        return TokenCount(len(get_encoding(name).encode_ordinary(text)), False, f"tiktoken:{name}")

    def count_messages_tokens(self, messages: Iterable[Message], model: str | None = None) -> int:
        """Tokens a chat request of ``messages`` costs, with per-message overhead."""
        return self.count_messages(messages, model).tokens

    def count_messages(self, messages: Iterable[Message], model: str | None = None) -> TokenCount:
        model = model or self._default_model
        messages = list(messages)
        if is_claude(model):
            return self._count_claude(messages, model, overhead=TOKENS_PER_MESSAGE * len(messages))
        name = encoding_name_for_model(model)
        encoding = get_encoding(name)
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                total += len(encoding.encode_ordinary(_text_of(value)))
                total += TOKENS_PER_NAME if key == "name" else 0
        return TokenCount(total, False, f"tiktoken:{name}")

    def _client(self) -> Any | None:
        if self._anthropic is None and os.environ.get("ANTHROPIC_API_KEY"):
            import anthropic

            self._anthropic = anthropic.Anthropic()
        return self._anthropic

    def _count_claude(self, messages: list[Message], model: str, overhead: int) -> TokenCount:
        client = self._client()
        if client is not None:
            try:
                result = client.messages.count_tokens(model=model, messages=messages)
                return TokenCount(int(result.input_tokens), False, "anthropic")
            except Exception as exc:  # any API failure falls back to an honest estimate
                log.warning("anthropic count_tokens failed, estimating: %s", exc)
        encoding = get_encoding("cl100k_base")
        raw = sum(len(encoding.encode_ordinary(_text_of(m.get("content", "")))) for m in messages)
        tokens = math.ceil(raw * CLAUDE_ESTIMATE_FACTOR) + overhead
        return TokenCount(tokens, True, "estimate:cl100k_base")
