"""An agent as the runtime manages it: its spec, limits, checks and supervised instances."""

from __future__ import annotations

from dataclasses import dataclass, field

from helix.backends.base import AgentSpec, InstanceContext
from helix.config import ResourceConfig
from helix.health import HealthCheck
from helix.instance import InstanceStatus, Supervisor
from helix.scaling import ScalingMetrics


@dataclass(frozen=True)
class AgentStatus:
    """An agent's instances as an operator sees them."""

    agent_id: str
    running: bool
    desired_instances: int
    running_instances: int
    ready_instances: int
    restart_count: int
    instances: list[InstanceStatus]


@dataclass
class ManagedAgent:
    spec: AgentSpec
    resources: ResourceConfig
    health_checks: list[HealthCheck]
    supervisors: dict[int, Supervisor] = field(default_factory=dict)
    desired: int = 0
    running: bool = False

    def context(self, index: int) -> InstanceContext:
        return InstanceContext(self.spec.agent_id, f"{self.spec.agent_id}-{index}", index)

    def free_indices(self, count: int) -> list[int]:
        """The lowest ``count`` indices not in use, so instance ids stay small and stable."""
        found: list[int] = []
        index = 0
        while len(found) < count:
            if index not in self.supervisors:
                found.append(index)
            index += 1
        return found

    def status(self) -> AgentStatus:
        instances = [self.supervisors[i].snapshot() for i in sorted(self.supervisors)]
        running = [s for s in instances if s.state == "running"]
        return AgentStatus(
            self.spec.agent_id,
            self.running,
            self.desired,
            len(running),
            sum(1 for s in running if s.ready),
            sum(s.restart_count for s in instances),
            instances,
        )

    def scaling_metrics(self) -> ScalingMetrics:
        sampled = [s for s in self.status().instances if s.cpu_percent is not None]
        if not sampled:
            return ScalingMetrics()
        cpu = sum(s.cpu_percent or 0.0 for s in sampled) / len(sampled)
        limit = self.resources.memory_limit_mb
        memory = (
            sum((s.rss_mb or 0.0) / limit * 100 for s in sampled) / len(sampled) if limit else None
        )
        return ScalingMetrics(cpu_percent=cpu, memory_percent=memory)
