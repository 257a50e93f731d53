"""Debian's Prometheus scrapes every service of a running stack with deploy/prometheus.yml's
settings (targets swapped for the stack's ports) and reads helm_* series back."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.stack import RunningStack

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus.yml"
REQUIRED = {
    "gateway": "helm_gateway_http_requests_total",
    "observer": "helm_observer_runs_total",
    "governor": "helm_bus_consumed_messages_total",
    "runtime": "helm_runtime_instances",
    "worker": "helm_worker_runs_total",
}


def local_config(deploy: dict[str, Any], endpoints: list[dict[str, str]]) -> dict[str, Any]:
    """The deploy file's jobs and scrape settings, with the stack's targets (interval <= 1 s)."""
    jobs = []
    for job in deploy["scrape_configs"]:
        targets = [e["target"] for e in endpoints if e["service"] == job["job_name"]]
        assert targets, f"no running {job['job_name']} in the stack's endpoints: {endpoints}"
        local = {k: v for k, v in job.items() if k != "static_configs"}
        jobs.append({**local, "static_configs": [{"targets": targets}]})
    settings = {**deploy["global"], "scrape_interval": "1s", "scrape_timeout": "1s"}
    return {"global": settings, "scrape_configs": jobs}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def prometheus(running_stack: RunningStack, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus binary is missing: run `make test-deps` (Debian's prometheus)")
    deploy = yaml.safe_load(DEPLOY.read_text())
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(local_config(deploy, running_stack.endpoints), indent=2))
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _get(url: str, path: str, **params: str) -> Any:
    try:
        resp = httpx.get(f"{url}{path}", params=params, timeout=5)
    except httpx.TransportError:
        return None
    return resp.json()["data"] if resp.status_code == 200 else None


def _wait(what: str, probe: Any, deadline_s: float = 60.0) -> Any:
    end, last = time.monotonic() + deadline_s, None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def test_prometheus_scrapes_every_service(prometheus: str) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        data = _get(prometheus, "/api/v1/targets")
        targets = data["activeTargets"] if data else []
        jobs = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return (
            targets
            if targets and jobs == set(REQUIRED) and all(t["health"] == "up" for t in targets)
            else None
        )

    _wait("every target up", all_up)
    for job, metric in REQUIRED.items():
        series = _wait(
            f"{metric} from {job}",
            lambda j=job, m=metric: _get(prometheus, "/api/v1/query", query=f'{m}{{job="{j}"}}')[
                "result"
            ],
        )
        assert series, (job, metric)
    names = _get(prometheus, "/api/v1/label/__name__/values")
    assert "helm_gateway_http_request_duration_seconds_bucket" in names
    assert "helm_bus_published_messages_total" in names
