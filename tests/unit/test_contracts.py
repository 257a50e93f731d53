"""The contracts as a producer and an old or new consumer see them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from helm import codec
from helm import contracts as c


def test_run_completed_round_trips_with_schema_version_and_id() -> None:
    run = c.RunCompleted(agent_id="classifier", input_tokens=10, output_tokens=5, confidence=0.9)
    back = codec.decode(c.TELEMETRY, codec.encode(run))
    assert back == run
    assert back.schema_version == c.SCHEMA_VERSION
    assert len(back.event_id) == 32
    assert back.total_tokens == 15


def test_messages_are_frozen() -> None:
    run = c.RunCompleted(agent_id="a")
    with pytest.raises(ValidationError):
        run.agent_id = "b"  # type: ignore[misc]


def test_unknown_fields_are_ignored_so_old_consumers_survive_new_producers() -> None:
    raw = json.dumps({"agent_id": "a", "type": "RunCompleted", "added_in_v9": {"x": 1}}).encode()
    assert codec.decode(c.TELEMETRY, raw).agent_id == "a"


@pytest.mark.parametrize(
    "cmd",
    [
        c.PauseAgent(agent_id="a", actor="operator:x"),
        c.ResumeAgent(agent_id="a", probe=True),
        c.ConstrainAgent(agent_id="a", rate_limit_per_min=6, batch_size=2, max_retries=1),
        c.StopInstance(agent_id="a", instance_id="a-0"),
        c.InjectAnomaly(agent_id="a", duration_s=5),
        c.ClearAnomaly(agent_id="a"),
    ],
)
def test_control_topic_decodes_every_command_to_its_own_type(cmd: c.ControlCommand) -> None:
    back = codec.decode(c.CONTROL, codec.encode(cmd))
    assert type(back) is type(cmd)
    assert back == cmd


def test_contract_violations_are_explained() -> None:
    raw = json.dumps({"agent_id": "a", "input_tokens": -3, "confidence": 2}).encode()
    with pytest.raises(codec.DecodeError) as err:
        codec.decode(c.TELEMETRY, raw)
    assert "input_tokens" in str(err.value)
    assert "confidence" in str(err.value)


def test_non_json_is_a_decode_error() -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(c.TELEMETRY, b"\x00\xffnot json")


def test_keys_follow_the_design() -> None:
    assert codec.key_for(c.RunCompleted(agent_id="a")) == "a"
    assert codec.key_for(c.AgentEscalated(agent_id="a", service_id="s")) == "s"
    assert codec.key_for(c.IncidentRecorded(scope_id="x", message="m")) == "x"
    task = c.TaskRequested(agent_id="a", input="q")
    assert codec.key_for(task) == task.task_id
    assert (
        codec.key_for(c.TaskAnswered(request_id="r", task_id="t", agent_id="a", output="o")) == "r"
    )


def test_task_topics_use_the_task_contract() -> None:
    task = c.TaskRequested(agent_id="a", input="hello")
    assert codec.decode(c.tasks_topic("a"), codec.encode(task)) == task
