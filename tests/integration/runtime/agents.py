"""A user agent for the runtime's tests, registered the way a user registers one."""

from __future__ import annotations

from helm import HelmClient

client = HelmClient(service="support")

# A Python worker needs far more than 40 MB: every instance of this agent outgrows its limit.
HOG_HELIX = {"min_instances": 1, "max_instances": 1, "memory_limit_mb": 40}


@client.agent(name="hog", helix=HOG_HELIX)
async def hog(query: str) -> str:
    """Answers, if it ever lives long enough to be asked."""
    return query
