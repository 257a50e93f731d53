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
    worker = sub.add_parser(
        "worker", help="run one instance of an agent you registered with @client.agent"
    )
    worker.add_argument("app", help="MODULE:CLIENT, the HelmClient your agents are registered on")
    worker.add_argument("--agent", required=True, help="the agent's name")
    worker.add_argument("--instance-id", help="this instance's id (default: host and pid)")
    from helm import publish, tail

    publish.add_parser(sub)
    tail.add_parser(sub)
    return parser


def _events(args: argparse.Namespace) -> None:
    """``publish`` and ``tail``: clear one-line errors, exit codes a script can test."""
    from aiokafka.errors import KafkaError

    from helm import publish, tail
    from helm.eventfile import PublishError
    from helm.settings import KafkaSettings, load

    settings = load(KafkaSettings)
    command = publish if args.command == "publish" else tail
    try:
        code = command.run(args, settings, sys.stdout, sys.stderr)
    except (PublishError, tail.TailError, OSError) as exc:
        sys.exit(f"helmctl {args.command}: {exc}")
    except KafkaError as exc:
        sys.exit(f"helmctl {args.command}: Kafka at {settings.bootstrap}: {exc!r}")
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _worker(args: argparse.Namespace) -> None:
    """Check the agent exists, then become ``python -m services.worker`` for it."""
    import os

    from helm.client import load_client

    sys.path.insert(0, os.getcwd())
    try:
        client = load_client(args.app)
    except (ImportError, ValueError) as exc:
        sys.exit(f"helmctl worker: cannot load {args.app}: {exc}")
    if args.agent not in client.agents:
        sys.exit(
            f"helmctl worker: {args.app} has no agent {args.agent!r}; it has {sorted(client.agents)}"
        )
    env = {**os.environ, "HELM_WORKER_APP": args.app, "HELM_WORKER_AGENT": args.agent}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    if args.instance_id:
        env["HELM_WORKER_INSTANCE_ID"] = args.instance_id
    os.execvpe(sys.executable, [sys.executable, "-m", "services.worker"], env)


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
    if args.command == "worker":
        _worker(args)
    if args.command in ("publish", "tail"):
        _events(args)


if __name__ == "__main__":
    main()
