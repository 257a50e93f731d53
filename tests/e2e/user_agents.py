"""Agents a user brings, as a user would write them (run by tests with ``helmctl worker``)."""

from __future__ import annotations

from helm import HelmClient
from helm.agent import RunContext

client = HelmClient()


@client.agent(name="echo", service="support", helix={"min_instances": 1, "max_instances": 3})
async def echo(query: str) -> str:
    """Answers with what it was asked."""
    return f"echo: {query}"


@client.agent(name="triage", service="support")
async def triage(query: str, ctx: RunContext) -> str:
    """Asks the model, and says how sure it is."""
    answer = await ctx.llm.complete(query, system="You triage support tickets.")
    ctx.report_confidence(0.9)
    return answer
