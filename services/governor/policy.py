"""Each agent's policy: the ``[governor]`` defaults, its service's override, then its own.

Pure. ``[governor.services.<id>]`` and ``[governor.agents.<id>]`` may set ``recovery_delay_s``,
``clean_runs``, ``max_attempts`` and ``tight``; whatever they leave unset is inherited, and
``tight`` is merged limit by limit, so an override naming only ``batch_size`` keeps the rest.
"""

from __future__ import annotations

from functools import lru_cache

from helm.config import GovernorConfig, GovernorOverride
from helm.state import Constraints


def _merge_limits(base: Constraints, over: Constraints) -> Constraints:
    return base.model_copy(update={k: getattr(over, k) for k in over.model_fields_set})


def _apply(p: GovernorConfig, o: GovernorOverride | None) -> GovernorConfig:
    if o is None:
        return p
    update = {
        k: getattr(o, k)
        for k in ("recovery_delay_s", "clean_runs", "max_attempts")
        if getattr(o, k) is not None
    }
    if o.tight is not None:
        update["tight"] = _merge_limits(p.tight, o.tight)
    return p.model_copy(update=update) if update else p


class Policies:
    """The agent-level policy for any agent, resolved once per (agent, service)."""

    def __init__(self, config: GovernorConfig) -> None:
        self.config = config
        self.resolve = lru_cache(maxsize=4096)(self._resolve)

    def _resolve(self, agent_id: str, service_id: str | None) -> GovernorConfig:
        p = self.config
        p = _apply(p, p.services.get(service_id or ""))
        return _apply(p, p.agents.get(agent_id))
