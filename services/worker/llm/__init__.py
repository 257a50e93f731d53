"""LLM providers behind one interface: ``anthropic`` (the official SDK) and ``offline``."""

from services.worker.llm.base import Completion, LLMError, LLMRequest, Provider

__all__ = ["Completion", "LLMError", "LLMRequest", "Provider"]
