"""Entry point of a process-backend instance running an importable callable.

``python -m helix.backends.child package.module:function`` imports the function and runs it as
the instance body (see ``base.run_entry``). SIGTERM ends it gracefully: a hosted handler returns
at once, a running coroutine is cancelled; either way the process exits 0. An exception exits 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

from helix.backends.base import InstanceContext, resolve, run_entry

log = logging.getLogger("helix.child")


def _stopper(stop: asyncio.Event, body: asyncio.Task[None]) -> Callable[[], None]:
    def on_signal() -> None:
        stop.set()  # a hosted handler returns at once
        body.cancel()  # a running body is cancelled

    return on_signal


async def _main(target: str) -> int:
    ctx = InstanceContext(
        os.environ.get("HELIX_AGENT_ID", ""),
        os.environ.get("HELIX_INSTANCE_ID", ""),
        int(os.environ.get("HELIX_INSTANCE_INDEX", "0")),
    )
    stop = asyncio.Event()
    body = asyncio.create_task(run_entry(resolve(target), ctx, stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(stop, body))
    try:
        await body
    except asyncio.CancelledError:
        return 0
    except Exception:
        log.exception("agent %s instance %s failed", ctx.agent_id, ctx.instance_id)
        return 1
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    sys.exit(asyncio.run(_main(sys.argv[1])))


if __name__ == "__main__":
    main()
