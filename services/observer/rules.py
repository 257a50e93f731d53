"""Drift rules over one agent's recent runs: pure, deterministic, checkpointable.

The three rules of the original Helm, as DESIGN.md states them (thresholds configurable):
- ``tokens_spike``: tokens per run > ratio x rolling median of the last N healthy runs
  (only after ``warmup_runs`` healthy runs, so a new agent is not judged on nothing);
- ``low_confidence``: confidence < minimum for K or more consecutive runs;
- ``repeated_retries``: retries in M or more of the last W runs.
Then the further rules the policy enables (``[drift.rules.<name>]``), in name order:
- a ratio rule: the run's latency, cost, tokens or confidence against ratio x the rolling median
  of the agent's last ``window`` healthy runs (after the same warm-up; a zero median, a metric the
  agent does not report, is not judged);
- an ``error_rate`` rule: failed runs among the last ``window`` above ``threshold`` and above
  ratio x the baseline error rate, which learns each run only once it leaves that window without
  having caused a drift.
A rule that fires starts its window afresh, so one episode yields one drift, and a run that
breaks any rule (or failed, or was a recovery probe) never enters the baselines.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from helm.config import DriftConfig, RuleConfig
from helm.contracts import DriftDetected, RunCompleted
from services.observer.policy import Policy
from services.observer.window import AgentWindow

__all__ = ["AgentWindow", "Finding", "Policy", "drift_event", "drift_id", "evaluate", "new_window"]
DRIFT_NS = uuid.UUID("6c1f6c1e-8a55-4b7b-9a8f-1d0e8f1b2a01")

RINGS = {
    "tokens_per_run": "tokens",
    "latency_ms": "latency",
    "cost": "cost",
    "confidence": "confidence",
}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    metric: str
    observed: float
    baseline: float | None
    threshold: float
    window: int
    evidence: list[str]


def new_window(p: Policy) -> AgentWindow:
    return AgentWindow.new(p.capacity, p.cfg.retries_window, p.error_window)


def evaluate(w: AgentWindow, run: RunCompleted, p: Policy) -> list[Finding]:
    """Apply one run to the window; return the rules it broke."""
    cfg = p.cfg
    w.runs += 1
    w.account(run)
    failed = run.outcome != "ok"
    w.failed += failed
    if p.error_window:
        _push_error(w, run, p, failed)
    found: list[Finding] = []
    for f in (_tokens(w, run, cfg), _confidence(w, run, cfg), _retries(w, run, cfg)):
        if f:
            found.append(f)
    for name, rule in p.ratio_rules:
        if f := _ratio(w, run, name, rule, cfg):
            found.append(f)
    for name, rule in p.error_rules:
        if f := _error_rate(w, name, rule):
            found.append(f)
    if found:
        w.drifts += len(found)
    elif not (failed or run.probe or run.retries or _low(run, cfg)):
        w.learn(run)
    return found


def _low(run: RunCompleted, cfg: DriftConfig) -> bool:
    return run.confidence is not None and run.confidence < cfg.confidence_min


def _tokens(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    if len(w.tokens) < cfg.warmup_runs or run.outcome != "ok":
        return None
    if run.total_tokens <= cfg.tokens_ratio * w.lowest("tokens", cfg.baseline_runs):
        return None  # the median is no lower than the minimum: no need to sort
    median = w.median("tokens", cfg.baseline_runs)
    assert median is not None
    threshold = cfg.tokens_ratio * median
    if run.total_tokens <= threshold:
        return None
    window = min(len(w.tokens), cfg.baseline_runs)
    return Finding(
        "tokens_spike", "tokens_per_run", run.total_tokens, median, threshold, window, [run.run_id]
    )


def _confidence(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    if run.confidence is None or run.confidence >= cfg.confidence_min:
        w.low_confidence.clear()
        return None
    w.low_confidence.append(run.run_id)
    if len(w.low_confidence) < cfg.confidence_runs:
        return None
    evidence, w.low_confidence = w.low_confidence, []
    return Finding(
        "low_confidence",
        "confidence",
        run.confidence,
        None,
        cfg.confidence_min,
        len(evidence),
        evidence,
    )


def _retries(w: AgentWindow, run: RunCompleted, cfg: DriftConfig) -> Finding | None:
    window = w.retries
    window.push(run.run_id, run.retries > 0)
    hits = window.count(window.size)
    if hits < cfg.retries_runs:
        return None
    seen, evidence = window.seen, window.ids
    window.clear()
    return Finding(
        "repeated_retries", "runs_with_retries", hits, None, cfg.retries_runs, seen, evidence
    )


def _value(run: RunCompleted, metric: str) -> float | None:
    if metric == "tokens_per_run":
        return run.total_tokens
    if metric == "latency_ms":
        return run.latency_ms
    if metric == "cost":
        return run.cost
    return run.confidence


def _ratio(
    w: AgentWindow, run: RunCompleted, name: str, rule: RuleConfig, cfg: DriftConfig
) -> Finding | None:
    value = _value(run, rule.metric)
    ring = w.ring(RINGS[rule.metric])
    if value is None or run.outcome != "ok" or len(ring) < cfg.warmup_runs:
        return None
    assert rule.ratio is not None
    name_ = RINGS[rule.metric]
    if rule.direction == "above" and value <= rule.ratio * w.lowest(name_, rule.window):
        return None  # cannot exceed ratio x the median, which is no lower than the minimum
    if rule.direction == "below" and value >= rule.ratio * w.highest(name_, rule.window):
        return None
    median = w.median(RINGS[rule.metric], rule.window)
    assert median is not None
    if median <= 0:
        return None
    limit = rule.ratio * median
    if rule.direction == "above":
        broke = value > limit and (rule.threshold is None or value > rule.threshold)
    else:
        broke = value < limit and (rule.threshold is None or value < rule.threshold)
    if not broke:
        return None
    return Finding(
        name, rule.metric, value, median, limit, min(len(ring), rule.window), [run.run_id]
    )


def _push_error(w: AgentWindow, run: RunCompleted, p: Policy, failed: bool) -> None:
    left = w.errors.push(run.run_id, failed)
    if left is not None:  # a run left the window without causing a drift: the baseline learns it
        w.error_base += p.error_alpha * (left - w.error_base)


def _error_rate(w: AgentWindow, name: str, rule: RuleConfig) -> Finding | None:
    errors, n = w.errors, rule.window
    if errors.seen < n:
        return None
    hits = errors.count(n)
    share = hits / n
    assert rule.threshold is not None
    limit = max(rule.threshold, (rule.ratio or 0.0) * w.error_base)
    if share <= limit:
        return None
    evidence = errors.ids[-hits:]
    errors.clear()
    return Finding(name, "error_rate", share, w.error_base, limit, n, evidence)


def drift_id(run_event_id: str, rule: str) -> str:
    """The id of the drift a run causes under a rule: the same however often it is computed."""
    return uuid.uuid5(DRIFT_NS, f"{run_event_id}:{rule}").hex


def drift_event(run: RunCompleted, f: Finding) -> DriftDetected:
    """The DriftDetected a finding on a run makes."""
    return DriftDetected(
        event_id=drift_id(run.event_id, f.rule),
        agent_id=run.agent_id,
        service_id=run.service_id,
        rule=f.rule,
        metric=f.metric,
        observed=f.observed,
        baseline=f.baseline,
        threshold=f.threshold,
        window=f.window,
        evidence_run_ids=f.evidence,
        cause_event_id=run.event_id,
    )
