"""The two agents of the original Helm, doing real work through whichever provider is set.

``classifier`` sorts customer records into risk categories; ``processor`` summarises incident
reports. Each validates the model's JSON against a schema: an invalid answer is retried (up to
the run's ``max_retries``) with the validation error fed back, and items that stay invalid are
rejected and counted, never silently passed on.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from services.worker.context import RunContext
from services.worker.data import Generator


class RiskCall(BaseModel):
    customer_id: str
    risk: Literal["low", "medium", "high"]
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(min_length=1)


class Summary(BaseModel):
    summary: str = Field(min_length=5)
    impact: Literal["low", "medium", "high"]
    resolution: str
    confidence: float = Field(ge=0, le=1)


CLASSIFIER_SYSTEM = (
    "You are a credit-risk analyst. Classify each customer record into a risk category: low, "
    "medium or high. Answer only with JSON of the form "
    '{"classifications": [{"customer_id": str, "risk": "low|medium|high", '
    '"confidence": 0..1, "reasoning": str}]}, one entry per record, in order.'
)
PROCESSOR_SYSTEM = (
    "You are an incident analyst. Summarise the incident report. Answer only with JSON: "
    '{"summary": str, "impact": "low|medium|high", "resolution": str, "confidence": 0..1}.'
)


class Classifier:
    kind = "classifier"

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    async def run(self, ctx: RunContext) -> str:
        records = self.generator.customers(ctx.batch_size, ctx.malformed_ratio)
        prompt = f"Classify these records.\n<records>{json.dumps(records)}</records>"
        valid: dict[str, RiskCall] = {}
        problems: list[str] = []
        for attempt in range(ctx.max_retries + 1):
            if attempt:
                ctx.retries += 1
                prompt += (
                    f"\nYour previous answer was invalid: {'; '.join(problems[:5])}. Answer again."
                )
            text = await ctx.llm.complete(prompt, system=CLASSIFIER_SYSTEM, task="classify")
            valid, problems = _parse_calls(text, [str(r.get("customer_id")) for r in records])
            if not problems:
                break
        ctx.rejected = len(records) - len(valid)
        if valid:
            mean = sum(v.confidence for v in valid.values()) / len(valid)
            ctx.report_confidence(mean * len(valid) / len(records))
        else:
            ctx.report_confidence(0.0)
        return json.dumps({k: v.risk for k, v in valid.items()})


def _parse_calls(text: str, ids: list[str]) -> tuple[dict[str, RiskCall], list[str]]:
    try:
        items = json.loads(text)["classifications"]
    except (ValueError, KeyError, TypeError) as exc:
        return {}, [f"not the expected JSON ({exc})"]
    valid: dict[str, RiskCall] = {}
    problems: list[str] = []
    for item in items if isinstance(items, list) else []:
        try:
            call = RiskCall.model_validate(item)
            valid[call.customer_id] = call
        except ValidationError as exc:
            problems.append(
                f"record {item.get('customer_id') if isinstance(item, dict) else '?'}: {exc.errors()[0]['msg']}"
            )
    problems += [
        f"record {i} missing" for i in ids if i not in valid and not any(i in p for p in problems)
    ]
    return valid, problems


class Processor:
    kind = "processor"

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    async def run(self, ctx: RunContext) -> str:
        reports = self.generator.incident_reports(ctx.batch_size, ctx.malformed_ratio)
        summaries: list[Summary] = []
        for report in reports:
            summary = await self._one(ctx, report)
            if summary is None:
                ctx.rejected += 1
            else:
                summaries.append(summary)
        confidences = [s.confidence for s in summaries]
        ctx.report_confidence(sum(confidences) / len(reports) if reports else 0.0)
        return json.dumps([s.summary for s in summaries])

    async def _one(self, ctx: RunContext, report: str) -> Summary | None:
        prompt = f"Summarise this incident report.\n<report>{report}</report>"
        for attempt in range(ctx.max_retries + 1):
            if attempt:
                ctx.retries += 1
            text = await ctx.llm.complete(prompt, system=PROCESSOR_SYSTEM, task="summarise")
            try:
                return Summary.model_validate_json(text)
            except ValidationError as exc:
                prompt += (
                    f"\nYour previous answer was invalid ({exc.errors()[0]['msg']}). Answer again."
                )
        return None


CHAT_SYSTEM = "You are the {agent} agent of an operations team. Answer the operator briefly."


async def chat(ctx: RunContext, query: str) -> str:
    """How a built-in agent answers a chat query."""
    system = CHAT_SYSTEM.format(agent=ctx.agent_id)
    return await ctx.llm.complete(query, system=system, task="chat")
