"""The whole stack as processes, started the way ``make run`` starts it (``helmctl up``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HELMCTL = Path(sys.executable).with_name("helmctl")


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    state_file: Path
    log_file: Path
    state: dict[str, Any]

    @property
    def base_url(self) -> str:
        return str(self.state["base_url"])

    @property
    def dashboard_url(self) -> str:
        return str(self.state["dashboard_url"])

    @property
    def token(self) -> str:
        return str(self.state["token"])

    @property
    def redis_url(self) -> str:
        return str(self.state["redis_url"])

    @property
    def kafka_bootstrap(self) -> str:
        return str(self.state["kafka_bootstrap"])

    @property
    def topic_prefix(self) -> str:
        return str(self.state.get("topic_prefix") or "")

    def kafka_env(self) -> dict[str, str]:
        """This process's environment pointed at the stack's broker, for ``helmctl`` commands."""
        return {
            **os.environ,
            "HELM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "HELM_KAFKA_TOPIC_PREFIX": self.topic_prefix,
        }

    @property
    def endpoints(self) -> list[dict[str, str]]:
        return list(self.refresh()["endpoints"])

    def refresh(self) -> dict[str, Any]:
        self.state = json.loads(self.state_file.read_text())
        return self.state

    def pids(self) -> dict[str, int | None]:
        return dict(self.refresh()["pids"])

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, deadline_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_stack(
    workdir: Path, env: dict[str, str] | None = None, deadline_s: float = 120.0
) -> RunningStack:
    """Start ``helmctl up`` in ``workdir``; return once the gateway answers /healthz."""
    state_file, log_file = workdir / "stack.json", workdir / "helmctl.log"
    full_env = {**os.environ, **(env or {})}
    log = log_file.open("wb")
    for var in ("HELM_KAFKA_BOOTSTRAP", "HELM_REDIS_URL"):
        if var not in (env or {}):
            full_env.pop(var, None)
    proc = subprocess.Popen(
        [
            str(HELMCTL),
            "up",
            "--state-file",
            str(state_file),
            "--port",
            "0",
            "--run-dir",
            str(workdir / "run"),
        ],
        cwd=workdir,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()  # the child has its own descriptor
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(
                f"helmctl up exited with {proc.returncode}:\n{log_file.read_text()[-5000:]}"
            )
        if state_file.exists() and "Helm is up." in log_file.read_text(errors="replace"):
            stack = RunningStack(proc, state_file, log_file, json.loads(state_file.read_text()))
            if httpx.get(f"{stack.base_url}/healthz", timeout=5).status_code == 200:
                return stack
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(
        f"the stack did not come up within {deadline_s} s:\n{log_file.read_text()[-5000:]}"
    )
