"""The three drift rules of the original Helm, as DESIGN.md states them."""

from __future__ import annotations

from helm.config import DriftConfig
from helm.contracts import RunCompleted
from services.observer.rules import AgentWindow, evaluate

CFG = DriftConfig()


def run(
    tokens: int = 500, confidence: float | None = 0.9, retries: int = 0, **kw: object
) -> RunCompleted:
    return RunCompleted(
        agent_id="a", input_tokens=tokens, confidence=confidence, retries=retries, **kw
    )


def feed(w: AgentWindow, runs: list[RunCompleted]) -> list[str]:
    return [f.rule for r in runs for f in evaluate(w, r, CFG)]


def test_a_healthy_stream_produces_no_drift() -> None:
    w = AgentWindow.new(CFG)
    tokens = [480, 520, 505, 610, 450, 530, 700, 495] * 10
    assert feed(w, [run(t, 0.8 + (i % 5) / 50) for i, t in enumerate(tokens)]) == []
    assert len(w.tokens) == CFG.baseline_runs


def test_tokens_above_five_times_the_median_of_healthy_runs_fire() -> None:
    w = AgentWindow.new(CFG)
    feed(w, [run(500) for _ in range(20)])
    assert feed(w, [run(2500)]) == []  # exactly 5x is not above
    findings = evaluate(w, run(2501), CFG)
    assert [f.rule for f in findings] == ["tokens_spike"]
    assert findings[0].baseline == 500
    assert findings[0].threshold == 2500


def test_the_baseline_is_the_last_twenty_healthy_runs_and_spikes_stay_out() -> None:
    w = AgentWindow.new(CFG)
    feed(w, [run(100) for _ in range(20)] + [run(400) for _ in range(20)])
    assert w.median() == 400  # the older 100s rolled out
    feed(w, [run(50_000)])
    assert 50_000 not in w.tokens


def test_a_new_agent_is_not_judged_before_warm_up() -> None:
    w = AgentWindow.new(CFG)
    feed(w, [run(100) for _ in range(CFG.warmup_runs - 1)])
    assert feed(w, [run(100_000)]) == []


def test_low_confidence_for_three_consecutive_runs_fires_once_per_episode() -> None:
    w = AgentWindow.new(CFG)
    assert feed(w, [run(confidence=0.5), run(confidence=0.5), run(confidence=0.9)]) == []
    fired = [evaluate(w, run(confidence=0.4), CFG) for _ in range(4)]
    assert [len(f) for f in fired] == [0, 0, 1, 0]
    assert fired[2][0].rule == "low_confidence"
    assert len(fired[2][0].evidence) == 3


def test_retries_in_three_of_the_last_five_runs_fire_with_their_run_ids() -> None:
    w = AgentWindow.new(CFG)
    runs = [run(retries=1), run(), run(retries=2), run(), run(retries=1)]
    found = [f for r in runs for f in evaluate(w, r, CFG)]
    assert [f.rule for f in found] == ["repeated_retries"]
    assert found[0].evidence == [runs[0].run_id, runs[2].run_id, runs[4].run_id]


def test_two_retries_in_five_do_not_fire() -> None:
    w = AgentWindow.new(CFG)
    assert feed(w, [run(retries=1), run(), run(), run(retries=1), run(), run(), run()]) == []


def test_probe_and_failed_runs_do_not_enter_the_baseline() -> None:
    w = AgentWindow.new(CFG)
    feed(w, [run(100, probe=True), run(100, outcome="timeout"), run(100, retries=1)])
    assert list(w.tokens) == []


def test_window_checkpoint_round_trips() -> None:
    w = AgentWindow.new(CFG)
    feed(w, [run(100 + i, retries=i % 2) for i in range(9)] + [run(confidence=0.1)])
    back = AgentWindow.from_json(w.to_json(), CFG)
    assert back.to_json() == w.to_json()
    assert back.tokens.maxlen == CFG.baseline_runs
