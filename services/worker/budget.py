"""The budget gate every LLM call passes: reserve the estimate first, settle the real count after.

The estimate is the prompt's tokens plus the call's ``max_tokens`` (the most it can cost), held
atomically against the agent's, its service's and its organisation's budgets; a refusal stops the
call before any request leaves the process and the run ends as ``budget_exceeded``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from helix import TokenBudgetManager, TokenCounter
from services.worker.handlers import BudgetExceeded, Identity
from services.worker.llm.base import LLMRequest

TOKENIZER_MODEL = "gpt-4"


class BudgetGate:
    def __init__(
        self, budgets: TokenBudgetManager, ident: Identity, org_id: str, counter: TokenCounter
    ) -> None:
        self.budgets, self.ident, self.org_id, self.counter = budgets, ident, org_id, counter

    def estimate(self, request: LLMRequest) -> int:
        text = request.system + "\n".join(t for _, t in request.messages)
        return self.counter.count_tokens(text, model=TOKENIZER_MODEL) + request.max_tokens

    async def __call__(self, request: LLMRequest) -> Callable[[int], Awaitable[None]]:
        reservation = await self.budgets.reserve(
            self.estimate(request),
            agent_id=self.ident.agent_id,
            service_id=self.ident.service_id,
            org_id=self.org_id,
        )
        if not reservation.granted:
            r = reservation.refused_by
            detail = (
                f"{r.budget_id}: {r.used} of {r.limit} tokens used, {r.requested} more asked"
                if r
                else ""
            )
            raise BudgetExceeded(f"token budget exhausted ({detail})")

        async def settle(actual_tokens: int) -> None:
            await self.budgets.settle(reservation, actual_tokens)

        return settle
