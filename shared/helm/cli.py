"""``helmctl``: run the stack, run a worker, publish and tail events."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helmctl", description="Helm: a control plane for LLM agents"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="start the embedded stack and every service; print the dashboard URL"
    )
    up.add_argument(
        "--state-file",
        type=Path,
        default=Path(".helm/stack.json"),
        help="where to write URLs and pids",
    )
    up.add_argument("--port", type=int, default=8000, help="gateway port (a free one if taken)")
    up.add_argument(
        "--run-dir", type=Path, default=Path(".helm/run"), help="logs of the embedded servers"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "up":
        from helm.logs import setup_logging
        from helm.stack import UpOptions, up

        setup_logging("helmctl", "INFO", as_json=False)
        options = UpOptions(
            state_file=args.state_file, gateway_port=args.port, run_dir=args.run_dir
        )
        sys.exit(asyncio.run(up(options)))


if __name__ == "__main__":
    main()
