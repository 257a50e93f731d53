"""Instance backends: OS processes (production) and asyncio tasks (tests, notebooks)."""

from helix.backends.base import AgentSpec, Backend, InstanceContext, InstanceHandle, Sample
from helix.backends.inprocess import InProcessBackend
from helix.backends.process import ProcessBackend

__all__ = [
    "AgentSpec",
    "Backend",
    "InProcessBackend",
    "InstanceContext",
    "InstanceHandle",
    "ProcessBackend",
    "Sample",
]
