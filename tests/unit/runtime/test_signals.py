"""What the autoscaler measures and what operators read about it."""

from __future__ import annotations

from helix import EventKind, InstanceStatus, RuntimeEvent, ScalingDecision
from helm import contracts as c
from services.runtime.autoscale import load, observed
from services.runtime.backlog import lag
from services.runtime.handlers import HeartbeatBook
from services.runtime.incidents import incident_for, scaled


def test_backlog_counts_what_the_group_has_not_committed() -> None:
    ends = {0: 10, 1: 7, 2: 5}
    # partition 2 never committed: everything since the beginning is still to do
    assert lag(ends, {0: 4, 1: 7, 2: None}, {0: 0, 1: 0, 2: 2}) == 6 + 0 + 3
    assert lag({0: 3}, {0: 5}, {0: 0}) == 0


def test_the_observers_figures_stop_counting_once_they_are_stale() -> None:
    fresh = {"tokens_per_second": 120.0, "latency_p95_ms": 900.0, "last_run_ts": 995.0}
    assert observed(fresh, now=1000.0) == (120.0, 900.0)
    assert observed(fresh, now=2000.0) == (0.0, None)
    assert observed({}, now=1000.0) == (None, None)


def test_cpu_is_averaged_over_ready_instances_and_memory_against_the_limit() -> None:
    book = HeartbeatBook(6, 30, clock=lambda: 1000.0)
    ready = InstanceStatus("a-0", "a", 0, "running", pid=1, rss_mb=100.0, ready=True)
    starting = InstanceStatus("a-1", "a", 1, "running", pid=2, rss_mb=300.0, ready=False)
    book.record(c.InstanceHeartbeat(agent_id="a", instance_id="a-0", pid=1, cpu_percent=40.0))
    book.record(c.InstanceHeartbeat(agent_id="a", instance_id="a-1", pid=2, cpu_percent=99.0))
    book.latest = {k: v.model_copy(update={"ts": 999.0}) for k, v in book.latest.items()}
    assert load([ready, starting], book, limit_mb=400) == (40.0, 50.0)
    assert load([ready, starting], book, limit_mb=None) == (40.0, None)


def test_a_scaling_incident_names_the_metric_and_value_behind_it() -> None:
    decision = ScalingDecision(
        "a", 1, 2, "queue_depth_per_instance 60 above target 5", "queue_depth_per_instance", 60, 5
    )
    incident = scaled(decision, reached=2)
    assert (incident.kind, incident.scope, incident.scope_id) == ("scaled", "agent", "a")
    assert incident.message == (
        "scaled a from 1 to 2 instances: queue_depth_per_instance 60 above target 5"
    )
    assert (incident.state_from, incident.state_to) == ("1", "2")
    assert "limited by max_workers" in scaled(decision, reached=1).message


def test_restarts_and_deaths_become_incidents_with_their_reasons() -> None:
    oom = RuntimeEvent(
        EventKind.INSTANCE_OOM_RESTARTED,
        "a",
        "a-0",
        "memory limit exceeded: rss 90 MB > limit 40 MB",
        detail={"pid": 42, "restart_count": 2, "backoff": 2.0},
    )
    incident = incident_for(oom)
    assert incident is not None and incident.kind == "instance_oom_restarted"
    assert incident.message == (
        "instance a-0 of a restarted as pid 42 (restart 2, after 2 s back-off): "
        "memory limit exceeded: rss 90 MB > limit 40 MB"
    )
    dead = RuntimeEvent(
        EventKind.HEALTH_CHANGED,
        "a",
        "a-0",
        detail={"check": "heartbeat", "status": "unhealthy", "error": "raised NoHeartbeat: x"},
    )
    death = incident_for(dead, pid=41)
    assert death is not None and death.kind == "instance_dead"
    assert death.message == "instance a-0 of a (pid 41) is dead: x; replacing it"
    started = RuntimeEvent(EventKind.INSTANCE_STARTED, "a", "a-0", detail={"pid": 1})
    assert incident_for(started) is None
