"""``helmctl publish`` and ``helmctl tail`` against a running stack, as a user runs them.

Both are real subprocesses pointed at the stack by ``HELM_KAFKA_BOOTSTRAP`` and
``HELM_KAFKA_TOPIC_PREFIX``. The stack's own workers keep publishing, so every check follows one
agent id of the test's own (``tail --key``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

from helm.settings import RedisSettings
from helm.store import Store
from tests.e2e.stack import HELMCTL, RunningStack
from tests.waiting import eventually


async def helmctl(stack: RunningStack, *args: str, deadline_s: float = 60) -> tuple[int, str, str]:
    """Run ``helmctl ARGS`` to the end: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        HELMCTL,
        *args,
        env=stack.kafka_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), deadline_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Tail:
    """``helmctl tail`` running in the background; ready once it says it is reading."""

    def __init__(self, stack: RunningStack, *args: str) -> None:
        self.stack, self.args = stack, args
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Tail:
        self.proc = await asyncio.create_subprocess_exec(
            HELMCTL,
            "tail",
            *self.args,
            env=self.stack.kafka_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        ready = await asyncio.wait_for(self.proc.stderr.readline(), 30)
        assert ready.startswith(b"tailing "), ready
        return self

    async def lines(self, deadline_s: float = 30) -> list[str]:
        """Everything it printed, once it stopped by itself (``--count``)."""
        assert self.proc is not None
        out, err = await asyncio.wait_for(self.proc.communicate(), deadline_s)
        assert self.proc.returncode == 0, err.decode()
        return out.decode().splitlines()

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


def new_agent(kind: str) -> str:
    return f"e2e-{kind}-{uuid.uuid4().hex[:8]}"


def jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


async def test_a_run_built_from_flags_arrives_as_described_and_tail_shows_it(
    running_stack: RunningStack,
) -> None:
    agent = new_agent("flags")
    async with (
        Tail(running_stack, "helm.telemetry", "--key", agent, "--count", "1") as piped,
        Tail(running_stack, "helm.telemetry", "--key", agent, "--count", "1", "--pretty") as tty,
    ):
        code, _, err = await helmctl(
            running_stack,
            *("publish", "run", "--agent", agent, "--service", "e2e", "--input-tokens", "300"),
            *("--output-tokens", "5000", "--confidence", "0.4", "--retries", "2"),
        )
        assert code == 0 and "published 1 event(s)" in err
        [line] = await piped.lines()
        [pretty] = await tty.lines()
    run = json.loads(line)
    assert run["type"] == "RunCompleted" and run["agent_id"] == agent
    assert (run["service_id"], run["input_tokens"], run["output_tokens"]) == ("e2e", 300, 5000)
    assert (run["confidence"], run["retries"]) == (0.4, 2)
    assert "RunCompleted" in pretty and f"agent_id={agent}" in pretty and "{" not in pretty

    again = await helmctl(
        running_stack, "tail", "helm.telemetry", "--from-beginning", "--key", agent, "--count", "1"
    )
    assert json.loads(again[1])["event_id"] == run["event_id"]


async def test_a_file_with_a_bad_line_names_line_and_field_and_sends_nothing(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    agent = new_agent("file")
    good = {"type": "RunCompleted", "agent_id": agent, "input_tokens": 100}
    bad = jsonl(tmp_path / "events.jsonl", [good, {**good, "output_tokens": -1}, good])
    async with Tail(running_stack, "helm.telemetry", "--key", agent, "--count", "1") as tail:
        code, _, err = await helmctl(running_stack, "publish", "--file", str(bad))
        assert code != 0
        assert "events.jsonl:2" in err and "output_tokens" in err, err
        sentinel = {**good, "run_id": "sentinel"}
        fine = jsonl(tmp_path / "fine.jsonl", [sentinel])
        assert (await helmctl(running_stack, "publish", "--file", str(fine)))[0] == 0
        [first] = await tail.lines()
    assert json.loads(first)["run_id"] == "sentinel", "nothing of the bad file was sent"


async def test_an_oversized_event_is_refused_by_number_and_nothing_is_sent(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    agent = new_agent("size")
    small = {"type": "RunCompleted", "agent_id": agent, "run_id": "before"}
    huge = {**small, "run_id": "huge", "model": "m" * 2_000_000}
    path = jsonl(tmp_path / "events.jsonl", [small, huge])
    async with Tail(running_stack, "helm.telemetry", "--key", agent, "--count", "1") as tail:
        raw = ("--raw", "--topic", "helm.telemetry", "--key", agent)
        code, _, err = await helmctl(running_stack, "publish", *raw, "--file", str(path))
        assert code != 0
        assert "event 2" in err and "too large" in err and "nothing was sent" in err, err
        fine = jsonl(tmp_path / "fine.jsonl", [{**small, "run_id": "sentinel"}])
        assert (await helmctl(running_stack, "publish", "--file", str(fine)))[0] == 0
        [first] = await tail.lines()
    assert json.loads(first)["run_id"] == "sentinel", "nothing of the refused file was sent"


async def test_a_large_file_shows_progress_and_every_event_is_counted(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    agent = new_agent("bulk")
    run = {"type": "RunCompleted", "agent_id": agent, "input_tokens": 400, "confidence": 0.9}
    path = jsonl(tmp_path / "bulk.jsonl", [run] * 3000)
    code, _, err = await helmctl(running_stack, "publish", "--file", str(path))
    assert code == 0, err
    assert "published 3000/3000 (100%)" in err and "published 300/3000" in err
    store = Store(RedisSettings(url=running_stack.redis_url))
    try:

        async def counted() -> bool:
            return int((await store.get_metrics(agent)).get("runs") or 0) == 3000

        await eventually(counted, 30, 0.2, what="3000 runs counted by the observer")
    finally:
        await store.close()


async def test_raw_bytes_go_to_the_dead_letter_topic_with_their_reason(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    key = new_agent("raw")
    path = tmp_path / "raw.txt"
    path.write_bytes(b"this is not json\n" + json.dumps({"agent_id": key, "retries": -3}).encode())
    # Both consumers of helm.telemetry (observer and governor) refuse each record: four letters.
    async with Tail(running_stack, "helm.deadletter", "--key", key, "--count", "4") as tail:
        args = ("publish", "--raw", "--topic", "helm.telemetry", "--key", key, "--file", str(path))
        code, _, err = await helmctl(running_stack, *args)
        assert code == 0, err
        everything = [json.loads(line) for line in await tail.lines()]
    assert {x["consumer"] for x in everything} == {"helm.observer", "helm.governor.telemetry"}
    letters = [x for x in everything if x["consumer"] == "helm.observer"]
    assert len(letters) == 2
    payloads = {base64.b64decode(x["payload_b64"]): x["reason"] for x in letters}
    assert "json" in payloads[b"this is not json"].lower()
    assert "retries" in next(r for p, r in payloads.items() if p.startswith(b"{"))
    assert all(x["source_topic"] == "helm.telemetry" for x in letters)


async def test_tail_of_an_unknown_topic_says_so(running_stack: RunningStack) -> None:
    code, _, err = await helmctl(running_stack, "tail", "helm.nonesuch", "--count", "1")
    assert code != 0 and "no topic" in err and "helm.nonesuch" in err
