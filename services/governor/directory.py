"""Who is under whom: the hierarchy the runtime keeps in Redis, as lookups. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Directory:
    """The organisation, its services and their agents."""

    org_id: str = "default"
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, tree: dict[str, Any]) -> Directory:
        org = tree.get("org") or {}
        services = {
            str(s["id"]): tuple(str(a) for a in s.get("agents") or [])
            for s in tree.get("services") or []
            if isinstance(s, dict) and s.get("id")
        }
        return cls(str(org.get("id") or "default"), services)

    def service_of(self, agent: str) -> str | None:
        return next((s for s, agents in self.services.items() if agent in agents), None)

    def agents(self) -> list[str]:
        return sorted({a for agents in self.services.values() for a in agents})

    def of_service(self, service: str) -> list[str]:
        return list(self.services.get(service, ()))

    def in_scope(self, scope: str, scope_id: str) -> list[str]:
        """Agents under a budget's scope (``org``, ``service`` or ``agent``)."""
        if scope == "org":
            return self.agents() if scope_id == self.org_id else []
        if scope == "service":
            return self.of_service(scope_id)
        return [scope_id]
