"""A reproducible telemetry stream with drifts in it, and what the pure rules make of it.

``replay`` is the reference: the same events, in the order each agent produced them, through the
pure rules in one process. A distributed, restarted or rebalanced observer must end with exactly
its windows (baselines and counters) and its drift ids.
"""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path
from typing import Any

from helm.config import DriftConfig
from helm.contracts import RunCompleted
from helm.store import Store
from services.observer.policy import Policies
from services.observer.rules import AgentWindow, drift_id, evaluate, new_window

# Every rule on, so that every kind of state is exercised and checked.
ALL_RULES_TOML = """
[drift.rules.latency_spike]
enabled = true
[drift.rules.cost_spike]
enabled = true
[drift.rules.error_rate]
enabled = true
"""


def all_rules_config(directory: Path, extra: str = "") -> Path:
    path = directory / "helm.toml"
    path.write_text(ALL_RULES_TOML + extra)
    return path


def all_rules() -> DriftConfig:
    return DriftConfig.model_validate(tomllib.loads(ALL_RULES_TOML)["drift"])


def stream(agents: int, runs: int, seed: int, prefix: str) -> list[RunCompleted]:
    """``runs`` runs over ``agents`` agents: mostly healthy, with spikes, streaks and failures."""
    rng = random.Random(seed)
    ids = [f"{prefix}-{i:03d}" for i in range(agents)]
    return [_run(rng, rng.choice(ids), 1_700_000_000.0 + i * 0.01) for i in range(runs)]


def _run(rng: random.Random, agent: str, ts: float) -> RunCompleted:
    spike = rng.random() < 0.01
    return RunCompleted(
        agent_id=agent,
        service_id="svc-" + agent[-1],
        ts=ts,
        model="claude-haiku-4-5",
        input_tokens=rng.randint(300, 600) * (12 if spike else 1),
        output_tokens=rng.randint(100, 200),
        latency_ms=rng.uniform(200, 400) * (8 if rng.random() < 0.01 else 1),
        cost=rng.uniform(0.001, 0.002) * (10 if rng.random() < 0.005 else 1),
        confidence=round(rng.uniform(0.2, 0.5) if rng.random() < 0.2 else rng.uniform(0.7, 1), 3),
        retries=1 if rng.random() < 0.12 else 0,
        outcome="timeout" if rng.random() < 0.12 else "ok",
    )


def replay(
    events: list[RunCompleted], cfg: DriftConfig
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """Final window of every agent and every drift (id -> agent, rule), as one observer has them."""
    policies = Policies(cfg)
    windows: dict[str, AgentWindow] = {}
    drifts: dict[str, tuple[str, str]] = {}
    for run in events:
        policy = policies.get(run.service_id, run.agent_id)
        w = windows.get(run.agent_id) or windows.setdefault(run.agent_id, new_window(policy))
        for f in evaluate(w, run, policy):
            drifts[drift_id(run.event_id, f.rule)] = (run.agent_id, f.rule)
    return {a: w.to_json() for a, w in windows.items()}, drifts


async def stored_windows(store: Store, agents: set[str]) -> dict[str, dict[str, Any]]:
    """The windows the observers checkpointed, as JSON."""
    names = sorted(agents)
    raws = await store.redis.mget([store.key("observer", "window", a) for a in names])
    return {a: json.loads(r) for a, r in zip(names, raws, strict=True) if r}


async def stored_runs(store: Store) -> int:
    """Runs behind the checkpointed positions (every partition starts at offset 0 here)."""
    rows = await store.redis.hgetall(store.key("observer", "offsets"))
    return sum(int(v) for v in rows.values())
