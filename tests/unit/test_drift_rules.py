"""Drift rules: the three of the original Helm as DESIGN.md states them, and the further ones."""

from __future__ import annotations

import json
import random
import tomllib
from typing import Any

import pytest

from helm.config import DriftConfig
from helm.contracts import RunCompleted
from services.observer.policy import Policies, Policy
from services.observer.rules import AgentWindow, evaluate, new_window
from services.observer.stats import AgentStats

CFG = DriftConfig()
P = Policy.of(CFG)
ALL_ON = Policy.of(
    DriftConfig.model_validate(
        {"rules": {n: {"enabled": True} for n in ("latency_spike", "cost_spike", "error_rate")}}
    )
)


def run(
    tokens: int = 500, confidence: float | None = 0.9, retries: int = 0, **kw: Any
) -> RunCompleted:
    return RunCompleted(
        agent_id="a", input_tokens=tokens, confidence=confidence, retries=retries, **kw
    )


def feed(w: AgentWindow, runs: list[RunCompleted], p: Policy = P) -> list[str]:
    return [f.rule for r in runs for f in evaluate(w, r, p)]


def healthy(n: int, seed: int = 1) -> list[RunCompleted]:
    """Runs that vary as real ones do: tokens, latency, cost and confidence within normal ranges."""
    rng = random.Random(seed)
    return [
        run(
            rng.randint(400, 800),
            round(rng.uniform(0.7, 0.99), 3),
            latency_ms=rng.uniform(200, 400),
            cost=rng.uniform(0.001, 0.002),
            outcome="timeout" if rng.random() < 0.05 else "ok",
        )
        for _ in range(n)
    ]


def test_a_healthy_stream_produces_no_drift_even_with_every_rule_on() -> None:
    for p in (P, ALL_ON):
        w = new_window(p)
        assert feed(w, healthy(500), p) == []
        assert len(w.tokens) == CFG.baseline_runs


def test_the_further_rules_are_off_by_default() -> None:
    assert P.ratio_rules == () and P.error_rules == ()
    assert {n for n, _ in ALL_ON.ratio_rules} == {"cost_spike", "latency_spike"}


def test_tokens_above_five_times_the_median_of_healthy_runs_fire() -> None:
    w = new_window(P)
    feed(w, [run(500) for _ in range(20)])
    assert feed(w, [run(2500)]) == []  # exactly 5x is not above
    findings = evaluate(w, run(2501), P)
    assert [f.rule for f in findings] == ["tokens_spike"]
    assert findings[0].baseline == 500
    assert findings[0].threshold == 2500


def test_the_baseline_is_the_last_twenty_healthy_runs_and_spikes_stay_out() -> None:
    w = new_window(P)
    feed(w, [run(100) for _ in range(20)] + [run(400) for _ in range(20)])
    assert w.median() == 400  # the older 100s rolled out
    feed(w, [run(50_000)])
    assert 50_000 not in w.tokens


def test_a_new_agent_is_not_judged_before_warm_up() -> None:
    w = new_window(P)
    feed(w, [run(100) for _ in range(CFG.warmup_runs - 1)])
    assert feed(w, [run(100_000)]) == []


def test_low_confidence_for_three_consecutive_runs_fires_once_per_episode() -> None:
    w = new_window(P)
    assert feed(w, [run(confidence=0.5), run(confidence=0.5), run(confidence=0.9)]) == []
    fired = [evaluate(w, run(confidence=0.4), P) for _ in range(4)]
    assert [len(f) for f in fired] == [0, 0, 1, 0]
    assert fired[2][0].rule == "low_confidence"
    assert len(fired[2][0].evidence) == 3


def test_retries_in_three_of_the_last_five_runs_fire_with_their_run_ids() -> None:
    w = new_window(P)
    runs = [run(retries=1), run(), run(retries=2), run(), run(retries=1)]
    found = [f for r in runs for f in evaluate(w, r, P)]
    assert [f.rule for f in found] == ["repeated_retries"]
    assert found[0].evidence == [runs[0].run_id, runs[2].run_id, runs[4].run_id]
    assert found[0].window == 5


def test_two_retries_in_five_do_not_fire() -> None:
    w = new_window(P)
    assert feed(w, [run(retries=1), run(), run(), run(retries=1), run(), run(), run()]) == []


def test_probe_and_failed_runs_do_not_enter_the_baseline() -> None:
    w = new_window(P)
    feed(w, [run(100, probe=True), run(100, outcome="timeout"), run(100, retries=1)])
    assert list(w.tokens) == [] and list(w.latency) == []


def test_latency_above_its_ratio_of_the_median_fires_when_enabled() -> None:
    w = new_window(ALL_ON)
    feed(w, [run(latency_ms=300.0, cost=0.001) for _ in range(20)], ALL_ON)
    assert feed(w, [run(latency_ms=900.0, cost=0.001)], ALL_ON) == []  # 3x is not above
    found = evaluate(w, run(latency_ms=950.0, cost=0.001), ALL_ON)
    assert [(f.rule, f.metric, f.baseline, f.threshold) for f in found] == [
        ("latency_spike", "latency_ms", 300.0, 900.0)
    ]
    assert 950.0 not in w.latency


def test_cost_per_run_above_its_ratio_fires_and_a_zero_cost_agent_is_never_judged() -> None:
    w = new_window(ALL_ON)
    feed(w, [run(cost=0.002) for _ in range(10)], ALL_ON)
    assert feed(w, [run(cost=0.0105)], ALL_ON) == ["cost_spike"]
    free = new_window(ALL_ON)
    assert feed(free, [run(cost=0.0) for _ in range(10)] + [run(cost=5.0)], ALL_ON) == []


def test_error_rate_above_threshold_and_baseline_fires_once_with_the_failed_runs() -> None:
    w = new_window(ALL_ON)
    feed(w, [run() for _ in range(30)], ALL_ON)
    failing = [run(outcome="timeout") if i % 3 else run() for i in range(10)]
    found = [f for r in failing for f in evaluate(w, r, ALL_ON)]
    assert [f.rule for f in found] == ["error_rate"]
    assert found[0].observed > 0.5 and found[0].window == 10
    assert set(found[0].evidence) <= {r.run_id for r in failing if r.outcome != "ok"}


def test_an_agent_that_always_fails_half_its_runs_learns_that_as_its_baseline() -> None:
    w = new_window(ALL_ON)
    flaky = [run(outcome="error" if i % 2 else "ok") for i in range(200)]
    feed(w, flaky, ALL_ON)
    assert w.error_base == pytest.approx(0.5, abs=0.15)
    assert feed(w, [run(outcome="error" if i % 5 < 3 else "ok") for i in range(10)], ALL_ON) == []


def test_overrides_apply_per_service_then_per_agent() -> None:
    cfg = DriftConfig.model_validate(
        tomllib.loads(
            """
            tokens_ratio = 5.0
            [services.payments.rules.latency_spike]
            enabled = true
            ratio = 2.0
            [agents.fraud]
            tokens_ratio = 10.0
            [agents.fraud.rules.latency_spike]
            ratio = 4.0
            """
        )
    )
    policies = Policies(cfg)
    fraud, other = policies.get("payments", "fraud"), policies.get("payments", "refunds")
    assert fraud.cfg.tokens_ratio == 10.0 and other.cfg.tokens_ratio == 5.0
    assert [(n, r.ratio) for n, r in fraud.ratio_rules] == [("latency_spike", 4.0)]
    assert [(n, r.ratio) for n, r in other.ratio_rules] == [("latency_spike", 2.0)]
    assert policies.get("risk", "x").ratio_rules == ()
    assert policies.get("payments", "refunds") is policies.get("payments", "ledger")


def test_an_override_naming_an_unknown_rule_without_its_metric_is_refused() -> None:
    with pytest.raises(ValueError, match=r"drift\.agents\.x"):
        DriftConfig.model_validate({"agents": {"x": {"rules": {"mine": {"window": 3}}}}})


def test_window_checkpoint_round_trips() -> None:
    w = new_window(ALL_ON)
    feed(w, healthy(40) + [run(100 + i, retries=i % 2) for i in range(9)], ALL_ON)
    feed(w, [run(confidence=0.1), run(outcome="error")], ALL_ON)
    p = ALL_ON
    assert json.loads(w.dumps()) == w.to_json()
    data = json.loads(w.dumps())
    back = AgentWindow.from_json(data, p.capacity, p.cfg.retries_window, p.error_window)
    assert back.to_json() == w.to_json()
    assert back.capacity == CFG.baseline_runs


def test_the_first_checkpoint_format_still_loads() -> None:
    old = {
        "tokens": [500, 510],
        "low_confidence": ["r9"],
        "retries": [["r1", True], ["r2", False], ["r3", True]],
        "runs": 7,
        "drifts": 1,
    }
    w = AgentWindow.from_json(old, 20, 5, 0)
    assert list(w.tokens) == [500, 510] and w.runs == 7 and w.drifts == 1
    assert feed(w, [run(retries=1)]) == ["repeated_retries"]


def test_windowed_figures_cover_the_last_five_minutes_of_the_runs_own_time() -> None:
    stats = AgentStats()
    for i in range(600):  # a run a second for ten minutes; the last minute's runs all failed
        outcome = "error" if i >= 540 else "ok"
        stats.record(run(ts=1_700_000_000.0 + i, latency_ms=100.0 + i % 10, outcome=outcome))
    m = stats.metrics()
    assert 270 <= m["requests"] <= 300  # thirty-second buckets
    assert 54 <= m["requests_per_minute"] <= 60
    assert m["errors"] == 60 and m["error_rate"] == pytest.approx(60 / m["requests"])
    assert 100 <= m["latency_p50_ms"] <= m["latency_p95_ms"] <= 109


def test_gaps_in_an_instances_run_numbers_are_counted_as_lost_runs() -> None:
    from services.observer.window import AgentWindow as Window

    w = Window.new(20, 5, 10)
    for seq in (1, 2, 3, 7, 8, 8, 5, 9):  # 4-6 never came; 8 twice and 5 late are not losses
        w.account(RunCompleted(agent_id="a", instance_id="a-0", seq=seq))
    assert w.lost == 3
    w.account(RunCompleted(agent_id="a", instance_id="a-0", seq=1))  # the instance restarted
    w.account(RunCompleted(agent_id="a", instance_id="a-0", seq=2))
    assert w.lost == 3
    back = Window.from_json(json.loads(w.dumps()), 20, 5, 10)
    assert (back.lost, back.seqs) == (3, {"a-0": 2})
