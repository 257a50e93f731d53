"""Drift policies per agent: ``[drift]``, then the service's overrides, then the agent's own.

A ``Policy`` is a resolved ``DriftConfig`` plus what the rules need on every run, computed once:
the enabled further rules in name order and the sizes of the windows they read. Agents without
overrides of their own share their service's policy object, so thousands of agents cost one.
"""

from __future__ import annotations

from dataclasses import dataclass

from helm.config import DriftConfig, RuleConfig


@dataclass(frozen=True, slots=True)
class Policy:
    cfg: DriftConfig
    ratio_rules: tuple[tuple[str, RuleConfig], ...]
    error_rules: tuple[tuple[str, RuleConfig], ...]
    capacity: int  # healthy runs kept per baseline
    error_window: int  # runs kept for error-rate rules (0: none enabled)
    error_alpha: float  # weight of one run in the baseline error rate

    @classmethod
    def of(cls, cfg: DriftConfig) -> Policy:
        enabled = sorted((n, r) for n, r in cfg.rules.items() if r.enabled)
        ratios = tuple((n, r) for n, r in enabled if r.metric != "error_rate")
        errors = tuple((n, r) for n, r in enabled if r.metric == "error_rate")
        return cls(
            cfg,
            ratios,
            errors,
            max([cfg.baseline_runs, *(r.window for _, r in ratios)]),
            max([0, *(r.window for _, r in errors)]),
            1.0 / cfg.baseline_runs,
        )


class Policies:
    """Resolves and caches the policy of each (service, agent)."""

    def __init__(self, cfg: DriftConfig) -> None:
        self.cfg = cfg
        self._cache: dict[tuple[str, str], Policy] = {}

    def get(self, service_id: str, agent_id: str) -> Policy:
        own = agent_id if agent_id in self.cfg.agents else ""
        service = service_id if service_id in self.cfg.services else ""
        key = (service, own)
        policy = self._cache.get(key)
        if policy is None:
            policy = self._cache[key] = Policy.of(self.cfg.resolve(service, own))
        return policy
