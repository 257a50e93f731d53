"""Agent bodies for process-backend tests, importable by a fresh interpreter."""

from __future__ import annotations

import asyncio

from helix import InstanceContext


async def idle() -> None:
    """Runs until stopped."""
    await asyncio.Event().wait()


async def hog(ctx: InstanceContext) -> None:
    """Allocates 200 MB and holds it."""
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page so it is resident
    await asyncio.Event().wait()
