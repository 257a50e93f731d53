"""No Docker engine runs here, so the production stack is checked by reading it.

Every Helm service in docker-compose.yml must run from the one image, wait for healthy Kafka and
Redis, reach them where they listen, serve its ops port where its settings say, have a
healthcheck, and be scraped by Prometheus at that port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.governor.settings import GovernorSettings
from services.observer.settings import ObserverSettings
from services.runtime.settings import RuntimeSettings
from services.worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
HELM = {name: s for name, s in SERVICES.items() if s.get("image") == "helm-control-plane:latest"}
DEFAULT_PORTS = {
    "observer": ObserverSettings.model_fields["ops_port"].default,
    "governor": GovernorSettings.model_fields["ops_port"].default,
    "runtime": RuntimeSettings.model_fields["ops_port"].default,
    "worker": WorkerSettings.model_fields["ops_port"].default,
}


def _port(name: str, service: dict[str, Any]) -> int:
    env = service["environment"]
    if name == "gateway":
        return int(env["HELM_GATEWAY_PORT"])
    kind = "worker" if name.startswith("worker") else name
    return int(env[f"HELM_{kind.upper()}_OPS_PORT"])


def _targets() -> set[str]:
    return {
        t
        for job in PROMETHEUS["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    }


def test_every_helm_service_is_there_from_one_image() -> None:
    kinds = {"worker" if n.startswith("worker") else n for n in HELM}
    assert kinds == {"gateway", "observer", "governor", "runtime", "worker"}
    assert all(s["build"] == "." for s in HELM.values())
    assert {"classifier", "processor"} <= {
        s["environment"].get("HELM_WORKER_AGENT") for s in HELM.values()
    }


@pytest.mark.parametrize("name", sorted(HELM))
def test_services_reach_kafka_and_redis_where_they_listen(name: str) -> None:
    service = HELM[name]
    env = service["environment"]
    kafka_env = SERVICES["kafka"]["environment"]
    assert env["HELM_KAFKA_BOOTSTRAP"] == kafka_env["KAFKA_ADVERTISED_LISTENERS"].split("//")[1]
    assert env["HELM_REDIS_URL"].startswith("redis://redis:6379")
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in service


@pytest.mark.parametrize("name", sorted(HELM))
def test_ops_ports_agree_with_settings_and_prometheus_scrapes_them(name: str) -> None:
    port = _port(name, HELM[name])
    kind = "worker" if name.startswith("worker") else name
    if kind != "gateway":
        assert port == DEFAULT_PORTS[kind]
        assert int(HELM[name]["environment"]["OPS_PORT"]) == port  # what its healthcheck calls
    assert f"{name}:{port}" in _targets()


def test_prometheus_scrapes_nothing_that_does_not_exist() -> None:
    for target in _targets():
        host, port = target.split(":")
        assert host in HELM and _port(host, HELM[host]) == int(port)


def test_the_infrastructure_is_the_production_kind() -> None:
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert SERVICES["redis"]["image"].startswith("redis:")
    for name in ("kafka", "redis", "prometheus", "grafana"):
        assert "healthcheck" in SERVICES[name]


def test_grafana_is_provisioned_from_files_that_exist() -> None:
    for volume in SERVICES["grafana"]["volumes"] + SERVICES["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).exists(), source
    dashboards = list((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
