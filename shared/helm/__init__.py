"""Helm's common layer: contracts, topics, settings, the Kafka bus, the Redis store, the stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["HelmClient"]

if TYPE_CHECKING:
    from helm.client import HelmClient


def __getattr__(name: str) -> Any:
    # The client pulls in the worker runtime; import it only when asked for.
    if name == "HelmClient":
        from helm.client import HelmClient

        return HelmClient
    raise AttributeError(name)
