"""Helix: the agent runtime SDK — lifecycle, health, scaling and LLM accounting.

See README.md in this directory for the API and its semantics.
"""

from helix.accounting import configure, get_token_budget_manager, get_token_tracker
from helix.agents import AgentStatus
from helix.backends import InProcessBackend, InstanceContext, ProcessBackend
from helix.budgets import (
    AlertLevel,
    BudgetAlert,
    BudgetScope,
    BudgetStatus,
    MemoryBudgetStore,
    RedisBudgetStore,
    Refusal,
    Reservation,
    TokenBudgetManager,
)
from helix.clock import Clock, ManualClock, SystemClock
from helix.config import ResourceConfig, RuntimeConfig
from helix.events import EventKind, RuntimeEvent
from helix.health import CheckType, HealthCheck, HealthChecker, HealthStatus, HealthTransition
from helix.instance import InstanceStatus
from helix.periods import TokenPeriod
from helix.runtime import AgentRuntime
from helix.scaling import Scaler, ScalingDecision, ScalingMetrics, ScalingMode, ScalingPolicy
from helix.tokens import TokenCount, TokenCounter
from helix.tracking import LLMResourceTracker
from helix.usage import TokenTracker, TokenUsage

__all__ = [
    "AgentRuntime",
    "AgentStatus",
    "AlertLevel",
    "BudgetAlert",
    "BudgetScope",
    "BudgetStatus",
    "CheckType",
    "Clock",
    "EventKind",
    "HealthCheck",
    "HealthChecker",
    "HealthStatus",
    "HealthTransition",
    "InProcessBackend",
    "InstanceContext",
    "InstanceStatus",
    "LLMResourceTracker",
    "ManualClock",
    "MemoryBudgetStore",
    "ProcessBackend",
    "RedisBudgetStore",
    "Refusal",
    "Reservation",
    "ResourceConfig",
    "RuntimeConfig",
    "RuntimeEvent",
    "Scaler",
    "ScalingDecision",
    "ScalingMetrics",
    "ScalingMode",
    "ScalingPolicy",
    "SystemClock",
    "TokenBudgetManager",
    "TokenCount",
    "TokenCounter",
    "TokenPeriod",
    "TokenTracker",
    "TokenUsage",
    "configure",
    "get_token_budget_manager",
    "get_token_tracker",
]
