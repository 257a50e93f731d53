"""The offline provider: a stand-in that is honest about being one.

Used when no ``ANTHROPIC_API_KEY`` is set. Answers are deterministic, derived from the input by
plain rules (so the agents' parsing and validation run for real); token counts come from a real
tokenizer; latency is measured (plus a configurable simulated model delay). Every event it takes
part in says ``provider=offline``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from helix import TokenCounter
from services.worker.llm.base import Completion, LLMRequest

TOKENIZER_MODEL = "gpt-4"  # cl100k_base: a real BPE tokenizer, shipped offline


class OfflineProvider:
    """Rule-based answers with real token counts. ``delay_ms`` simulates the model's time."""

    name = "offline"

    def __init__(self, delay_ms: float = 20.0, counter: TokenCounter | None = None) -> None:
        self.delay_ms = delay_ms
        self.counter = counter or TokenCounter()

    async def complete(self, request: LLMRequest) -> Completion:
        start = time.perf_counter()
        prompt = "\n".join(text for _, text in request.messages)
        text = _answer(request.task, prompt)
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        latency = (time.perf_counter() - start) * 1000
        count = self.counter.count_tokens
        return Completion(
            text=text,
            model=request.model,
            provider=self.name,
            input_tokens=count(request.system, model=TOKENIZER_MODEL)
            + count(prompt, model=TOKENIZER_MODEL),
            output_tokens=count(text, model=TOKENIZER_MODEL),
            latency_ms=latency,
            ttft_ms=latency,
            stop_reason="end_turn",
        )

    async def close(self) -> None:
        return None


def _answer(task: str, prompt: str) -> str:
    if task == "classify":
        return json.dumps(_classify(_last_json(prompt)))
    if task == "summarise":
        return json.dumps(_summarise(prompt))
    return _chat(prompt)


def _last_json(prompt: str) -> Any:
    start = prompt.rfind("<records>")
    end = prompt.rfind("</records>")
    try:
        return json.loads(prompt[start + len("<records>") : end])
    except (ValueError, IndexError):
        return []


def _unit(value: str) -> float:
    """A stable number in [0, 1) derived from a string."""
    return int(hashlib.sha256(value.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _classify(records: Any) -> dict[str, Any]:
    results = [_classify_one(r) for r in records] if isinstance(records, list) else []
    return {"classifications": results}


def _classify_one(record: Any) -> dict[str, Any]:
    rid = str(record.get("customer_id", "?")) if isinstance(record, dict) else "?"
    try:
        score = int(record["credit_score"])
        dti = float(record["debt_to_income"])
        late = int(record["late_payments_12m"])
    except (KeyError, TypeError, ValueError):
        return {
            "customer_id": rid,
            "risk": "unreadable",
            "confidence": 0.1,
            "reasoning": "unreadable",
        }
    points = (score < 600) * 2 + (score < 680) + (dti > 0.45) * 2 + (dti > 0.35) + min(late, 3)
    risk = "high" if points >= 4 else "medium" if points >= 2 else "low"
    confidence = round(0.72 + 0.25 * _unit(rid), 3)
    reason = f"credit score {score}, debt-to-income {dti:.2f}, {late} late payments in 12 months"
    return {"customer_id": rid, "risk": risk, "confidence": confidence, "reasoning": reason}


def _summarise(prompt: str) -> dict[str, Any]:
    body = prompt.rsplit("<report>", 1)[-1].split("</report>", 1)[0].strip()
    sentences = [s.strip() for s in body.replace("\n", " ").split(".") if len(s.strip()) > 3]
    if len(sentences) < 2:
        return {"error": "the report has too little text to summarise"}
    lowered = body.lower()
    impact = "high" if any(w in lowered for w in ("outage", "breach", "data loss")) else "medium"
    if "minor" in lowered or "cosmetic" in lowered:
        impact = "low"
    return {
        "summary": sentences[0][:200] + ".",
        "impact": impact,
        "resolution": (sentences[-1][:200] + ".") if len(sentences) > 1 else "unknown",
        "confidence": round(0.7 + 0.25 * _unit(body), 3),
    }


def _chat(prompt: str) -> str:
    question = prompt.strip().splitlines()[-1][:500] if prompt.strip() else ""
    return (
        "[offline provider] No model is configured (set ANTHROPIC_API_KEY for Claude). "
        f"I received your message of {len(prompt)} characters: {question}"
    )
