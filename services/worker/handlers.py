"""One run, start to telemetry: plain async functions the worker's loops call.

``execute`` runs an agent function with a fresh ``RunContext`` and always returns exactly one
``RunCompleted``: a failure becomes an outcome (``timeout``, ``rate_limited``, ``budget_exceeded``,
``invalid_output``...), never a crash of the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from helm import contracts as c
from helm.config import AgentConfig, HelmConfig
from services.worker.context import AgentSettings, Gate, MeteredLLM, RunContext
from services.worker.control import ControlState
from services.worker.llm.base import LLMError, Provider

log = logging.getLogger(__name__)

AgentFn = Callable[[RunContext], Awaitable[str]]


class BudgetExceeded(Exception):
    """The budget gate refused a reservation; no LLM call was made."""


@dataclass(frozen=True)
class Identity:
    agent_id: str
    service_id: str
    instance_id: str


@dataclass
class Outcome:
    event: c.RunCompleted
    output: str


def plan(
    agent: AgentConfig, state: ControlState, ident: Identity, provider: Provider, gate: Gate | None
) -> RunContext:
    """The context of the next run, with the constraints and anomaly in force now."""
    settings = AgentSettings(
        model=agent.model,
        max_tokens=agent.max_tokens,
        temperature=agent.temperature,
        max_retries=state.max_retries(2),
    )
    return RunContext(
        agent_id=ident.agent_id,
        llm=MeteredLLM(provider, settings, gate),
        batch_size=state.batch_size(agent.batch_size),
        max_retries=settings.max_retries,
        malformed_ratio=state.malformed_ratio(),
        probe=state.control.probe,
    )


async def execute(
    fn: AgentFn,
    ctx: RunContext,
    ident: Identity,
    config: HelmConfig,
    provider: str,
    task_id: str | None = None,
) -> Outcome:
    start = time.perf_counter()
    outcome: c.Outcome = "ok"
    error: str | None = None
    output = ""
    try:
        output = await fn(ctx)
    except LLMError as exc:
        outcome, error = exc.outcome, str(exc)
    except BudgetExceeded as exc:
        outcome, error = "budget_exceeded", str(exc)
    except Exception as exc:
        log.exception("agent %s failed", ident.agent_id)
        outcome, error = "error", f"{type(exc).__name__}: {exc}"
    if outcome == "ok" and ctx.confidence is not None and ctx.confidence == 0.0 and ctx.rejected:
        outcome, error = "invalid_output", f"all {ctx.rejected} items rejected"
    m = ctx.llm.meter
    event = c.RunCompleted(
        agent_id=ident.agent_id,
        service_id=ident.service_id,
        instance_id=ident.instance_id,
        model=m.model,
        provider=provider,
        input_tokens=m.input_tokens,
        output_tokens=m.output_tokens,
        latency_ms=(time.perf_counter() - start) * 1000,
        ttft_ms=m.ttft_ms,
        cost=0.0
        if provider == "offline"
        else config.cost(m.model, m.input_tokens, m.output_tokens),
        confidence=ctx.confidence,
        retries=m.retries + ctx.retries,
        batch_size=ctx.batch_size,
        outcome=outcome,
        error=error[:2000] if error else None,
        probe=ctx.probe,
        malformed=ctx.rejected,
        task_id=task_id,
    )
    return Outcome(event, output)


def answer_for(task: c.TaskRequested, result: Outcome) -> c.TaskAnswered | None:
    """The reply a waiting client gets, if one is waiting."""
    if task.request_id is None:
        return None
    ev = result.event
    text = result.output if ev.outcome == "ok" else f"[{ev.outcome}] {ev.error or ''}".strip()
    return c.TaskAnswered(
        request_id=task.request_id,
        task_id=task.task_id,
        agent_id=ev.agent_id,
        output=text,
        outcome=ev.outcome,
        input_tokens=ev.input_tokens,
        output_tokens=ev.output_tokens,
        latency_ms=ev.latency_ms,
        provider=ev.provider,
    )
