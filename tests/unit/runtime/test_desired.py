"""What the runtime runs and how: from the configuration file and from users' registrations."""

from __future__ import annotations

import tomllib

from helm.config import HelmConfig
from helm.state import AgentMeta
from services.runtime.desired import desired, importable

CONFIG = """
[[services]]
id = "ops"

[[agents]]
id = "classifier"
service = "ops"
kind = "classifier"
min_instances = 1
max_instances = 4
memory_limit_mb = 256
[agents.scaling]
target_backlog_per_instance = 20
target_cpu_percent = 0
scale_down_cooldown = 30

[[agents]]
id = "bespoke"
service = "ops"
kind = "custom"
"""


def config() -> HelmConfig:
    return HelmConfig.model_validate(tomllib.loads(CONFIG))


def test_the_scaling_table_of_the_file_is_the_agents_policy() -> None:
    spec = desired(config(), [])["classifier"]
    policy = spec.policy()
    assert (policy.min_instances, policy.max_instances) == (1, 4)
    assert policy.target_queue_depth_per_instance == 20
    assert policy.target_cpu_percent is None  # 0 turns a signal off
    assert policy.target_memory_percent == 80  # a memory signal, since there is a limit
    assert (policy.scale_up_cooldown, policy.scale_down_cooldown) == (60, 30)
    resources = spec.resources()
    assert resources.memory_limit_mb == 256
    assert resources.env == {"HELM_WORKER_AGENT": "classifier", "HELM_WORKER_APP": ""}


def test_a_users_helix_dict_is_honoured() -> None:
    meta = AgentMeta(
        agent_id="mine",
        app="pkg.agents:client",
        min_instances=2,
        max_instances=10,
        helix={"memory_limit_mb": 512, "target_backlog_per_instance": 3, "cpu_limit_percent": 50},
    )
    spec = desired(config(), [meta])["mine"]
    assert (spec.min_instances, spec.max_instances, spec.memory_limit_mb) == (2, 10, 512)
    assert spec.policy().target_queue_depth_per_instance == 3
    assert spec.resources().env["HELM_WORKER_APP"] == "pkg.agents:client"


def test_only_agents_something_can_run_are_started_and_the_file_wins() -> None:
    unregistered = AgentMeta(agent_id="bespoke", kind="custom")
    impostor = AgentMeta(agent_id="classifier", app="other:client", max_instances=9)
    specs = desired(config(), [unregistered, impostor])
    assert set(specs) == {"classifier"}
    assert specs["classifier"].app == "" and specs["classifier"].max_instances == 4


def test_invalid_scaling_settings_fall_back_to_the_defaults() -> None:
    meta = AgentMeta(agent_id="odd", app="m:c", helix={"scale_up_step": 0})
    assert desired(config(), [meta])["odd"].policy().scale_up_step == 1


def test_an_app_is_runnable_only_if_its_module_can_be_found() -> None:
    assert importable("tests.integration.runtime.agents:client")
    assert not importable("no_such_module:client")
    assert not importable(":client")
