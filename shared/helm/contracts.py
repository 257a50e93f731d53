"""Every message Helm puts on Kafka: frozen pydantic models, one module, with topic names.

Events are past tense, commands imperative. Every message carries ``schema_version`` and an
``event_id``; consumers ignore fields they do not know (an old consumer survives a new producer)
and make every effect idempotent by ``event_id`` because delivery is at least once. New fields are
optional. ``TOPIC_MESSAGES`` says which models may appear on which topic.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

TELEMETRY = "helm.telemetry"
HEARTBEATS = "helm.heartbeats"
DRIFT = "helm.drift"
CONTROL = "helm.control"
ESCALATIONS = "helm.escalations"
INCIDENTS = "helm.incidents"
REPLIES = "helm.replies"
DEADLETTER = "helm.deadletter"
TASKS_PREFIX = "helm.tasks."

FIXED_TOPICS = (TELEMETRY, HEARTBEATS, DRIFT, CONTROL, ESCALATIONS, INCIDENTS, REPLIES, DEADLETTER)


def tasks_topic(agent_id: str) -> str:
    """The per-agent task topic, ``helm.tasks.<agent_id>``."""
    return f"{TASKS_PREFIX}{agent_id}"


def _new_id() -> str:
    return uuid.uuid4().hex


class Message(BaseModel):
    """Base of every message: frozen, unknown fields ignored, versioned, identified.

    Numbers are finite: JSON's ``NaN`` and ``Infinity`` are refused, since no sum, median or
    threshold downstream means anything with them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    schema_version: int = Field(SCHEMA_VERSION, description="contract version of this message")
    event_id: str = Field(default_factory=_new_id, description="unique id; effects dedupe on it")
    ts: float = Field(default_factory=time.time, description="when it happened, unix seconds")


Outcome = Literal[
    "ok",
    "error",
    "timeout",
    "rate_limited",
    "overloaded",
    "bad_request",
    "invalid_output",
    "budget_exceeded",
    "cancelled",
]


class RunCompleted(Message):
    """One agent run finished (successfully or not)."""

    type: Literal["RunCompleted"] = "RunCompleted"
    run_id: str = Field(default_factory=_new_id, description="the run this reports")
    agent_id: str = Field(min_length=1, max_length=128, description="agent that ran")
    service_id: str = Field(
        "default", min_length=1, max_length=128, description="service the agent belongs to"
    )
    instance_id: str = Field("", max_length=128, description="worker instance that ran it")
    model: str = Field("", max_length=128, description="LLM model name")
    provider: str = Field("offline", max_length=64, description="anthropic, offline, ...")
    input_tokens: int = Field(0, ge=0, description="prompt tokens")
    output_tokens: int = Field(0, ge=0, description="completion tokens")
    latency_ms: float = Field(0.0, ge=0, description="wall time of the run")
    ttft_ms: float | None = Field(None, ge=0, description="time to first token")
    cost: float = Field(0.0, ge=0, description="cost in USD from the price table")
    confidence: float | None = Field(None, ge=0, le=1, description="the agent's own confidence")
    retries: int = Field(0, ge=0, description="LLM calls retried within this run")
    batch_size: int = Field(1, ge=0, description="work items in this run")
    outcome: Outcome = Field("ok", description="ok or the kind of error")
    error: str | None = Field(None, max_length=2000, description="error detail")
    probe: bool = Field(False, description="a recovery probe run under tight constraints")
    malformed: int = Field(0, ge=0, description="input records the agent rejected")
    task_id: str | None = Field(None, description="the task this run answered, if any")
    seq: int | None = Field(
        None, ge=1, description="the instance's run number (1, 2, ...): gaps mean runs were lost"
    )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class InstanceHeartbeat(Message):
    """A worker instance is alive; sent every few seconds."""

    type: Literal["InstanceHeartbeat"] = "InstanceHeartbeat"
    agent_id: str = Field(min_length=1, max_length=128, description="agent the instance runs")
    service_id: str = Field("default", min_length=1, max_length=128, description="its service")
    instance_id: str = Field(min_length=1, max_length=128, description="instance id")
    pid: int = Field(ge=0, description="OS process id")
    state: str = Field("running", description="running, paused, draining")
    cpu_percent: float = Field(0.0, ge=0, description="process CPU %")
    rss_mb: float = Field(0.0, ge=0, description="resident memory, MB")
    in_flight: int = Field(0, ge=0, description="runs in progress")
    runs_total: int = Field(0, ge=0, description="runs since the instance started")
    provider: str = Field("offline", description="LLM provider in use")


class DriftDetected(Message):
    """The observer saw an agent leave its normal behaviour."""

    type: Literal["DriftDetected"] = "DriftDetected"
    agent_id: str = Field(min_length=1, max_length=128, description="drifting agent")
    service_id: str = Field("default", min_length=1, max_length=128, description="its service")
    rule: str = Field(
        min_length=1, max_length=128, description="rule that fired, e.g. tokens_spike"
    )
    metric: str = Field(min_length=1, max_length=128, description="metric the rule watches")
    observed: float = Field(description="value that broke the rule")
    baseline: float | None = Field(None, description="baseline it was compared with")
    threshold: float = Field(description="the rule's threshold")
    window: int = Field(description="runs the rule looked at")
    evidence_run_ids: list[str] = Field(default_factory=list, description="runs behind it")
    cause_event_id: str = Field("", description="the RunCompleted event that tripped it")


# The agent id of an operator's PauseAgent / ResumeAgent that means "every agent": the
# organisation's kill switch, engaged and released by the governor (workers ignore it).
EVERY_AGENT = "*"


class ControlCommand(Message):
    """Base of commands to workers; ``actor`` and ``reason`` say who asked and why."""

    agent_id: str = Field(min_length=1, max_length=128, description="agent the command is for")
    actor: str = Field(
        "helm", min_length=1, max_length=128, description="who decided: a governor or an operator"
    )
    reason: str = Field("", max_length=2000, description="why")
    cause_ids: list[str] = Field(default_factory=list, description="events that caused it")


class PauseAgent(ControlCommand):
    type: Literal["PauseAgent"] = "PauseAgent"


class ResumeAgent(ControlCommand):
    type: Literal["ResumeAgent"] = "ResumeAgent"
    probe: bool = Field(False, description="resume for recovery probes only")


class ConstrainAgent(ControlCommand):
    type: Literal["ConstrainAgent"] = "ConstrainAgent"
    rate_limit_per_min: float | None = Field(
        None, ge=0.001, description="runs per minute (at least 0.001), or none"
    )
    batch_size: int | None = Field(None, ge=1, description="largest batch, or none")
    max_retries: int | None = Field(None, ge=0, description="LLM retries per run, or none")


class StopInstance(ControlCommand):
    type: Literal["StopInstance"] = "StopInstance"
    instance_id: str = Field(min_length=1, max_length=128, description="instance to stop")


class InjectAnomaly(ControlCommand):
    type: Literal["InjectAnomaly"] = "InjectAnomaly"
    duration_s: float = Field(30.0, gt=0, le=3600, description="how long the anomaly lasts")
    batch_multiplier: int = Field(8, ge=1, le=100, description="batch size grows by this")
    malformed_ratio: float = Field(0.3, ge=0, le=1, description="share of malformed records")


class ClearAnomaly(ControlCommand):
    type: Literal["ClearAnomaly"] = "ClearAnomaly"


Command = Annotated[
    PauseAgent | ResumeAgent | ConstrainAgent | StopInstance | InjectAnomaly | ClearAnomaly,
    Field(discriminator="type"),
]


class AgentEscalated(Message):
    """The agent governor gave up on an agent and hands it to the service governor."""

    type: Literal["AgentEscalated"] = "AgentEscalated"
    agent_id: str = Field(min_length=1, max_length=128, description="degraded agent")
    service_id: str = Field(
        "default", min_length=1, max_length=128, description="its service (the message key)"
    )
    attempts: int = Field(0, ge=0, description="recovery attempts made")
    reason: str = Field("", max_length=2000, description="why")
    cause_ids: list[str] = Field(default_factory=list, description="events behind it")


class ServiceEscalated(Message):
    """The service governor hands a service to the organisation level."""

    type: Literal["ServiceEscalated"] = "ServiceEscalated"
    service_id: str = Field(min_length=1, max_length=128, description="service (the message key)")
    org_id: str = Field("default", min_length=1, max_length=128, description="organisation")
    degraded_agents: list[str] = Field(default_factory=list, description="agents degraded")
    reason: str = Field("", max_length=2000, description="why")
    cause_ids: list[str] = Field(default_factory=list, description="events behind it")


Escalation = Annotated[AgentEscalated | ServiceEscalated, Field(discriminator="type")]

Severity = Literal["info", "warning", "critical"]
Scope = Literal["agent", "service", "org", "instance"]


class IncidentRecorded(Message):
    """Something an operator should know: every governor decision, every transition."""

    type: Literal["IncidentRecorded"] = "IncidentRecorded"
    severity: Severity = Field("info", description="info, warning or critical")
    scope: Scope = Field("agent", description="what it is about")
    scope_id: str = Field(min_length=1, description="id of the agent, service, org or instance")
    kind: str = Field("note", description="machine-readable kind, e.g. paused, recovering")
    message: str = Field(max_length=4000, description="what happened, for people")
    actor: str = Field("helm", description="who acted")
    cause_ids: list[str] = Field(default_factory=list, description="events that caused it")
    state_from: str | None = Field(None, description="state before, for transitions")
    state_to: str | None = Field(None, description="state after, for transitions")


class TaskRequested(Message):
    """Work for an agent: a work item or a chat query."""

    type: Literal["TaskRequested"] = "TaskRequested"
    task_id: str = Field(default_factory=_new_id, description="task id (the message key)")
    agent_id: str = Field(min_length=1, max_length=128, description="agent that should do it")
    request_id: str | None = Field(None, description="set when somebody waits for the answer")
    kind: Literal["query", "work"] = Field("query", description="chat query or work item")
    input: str = Field(max_length=200_000, description="the query or the work item, as text")


class TaskAnswered(Message):
    """The answer to a task somebody is waiting for."""

    type: Literal["TaskAnswered"] = "TaskAnswered"
    request_id: str = Field(min_length=1, description="correlates with TaskRequested.request_id")
    task_id: str = Field(description="the task answered")
    agent_id: str = Field(description="agent that answered")
    output: str = Field(description="the answer")
    outcome: Outcome = Field("ok", description="ok or the kind of error")
    input_tokens: int = Field(0, ge=0, description="prompt tokens used")
    output_tokens: int = Field(0, ge=0, description="completion tokens used")
    latency_ms: float = Field(0.0, ge=0, description="time to answer")
    provider: str = Field("offline", description="LLM provider")


class DeadLettered(Message):
    """A message that could not be decoded or validated, kept with the reason."""

    type: Literal["DeadLettered"] = "DeadLettered"
    source_topic: str = Field(description="topic it came from")
    partition: int = Field(-1, description="source partition")
    offset: int = Field(-1, description="source offset")
    consumer: str = Field("", description="consumer group that refused it")
    reason: str = Field(description="why it was refused")
    payload_b64: str = Field(description="the raw bytes, base64")
    key_b64: str | None = Field(None, description="the raw key, base64")


TOPIC_MESSAGES: dict[str, Any] = {
    TELEMETRY: RunCompleted,
    HEARTBEATS: InstanceHeartbeat,
    DRIFT: DriftDetected,
    CONTROL: Command,
    ESCALATIONS: Escalation,
    INCIDENTS: IncidentRecorded,
    REPLIES: TaskAnswered,
    DEADLETTER: DeadLettered,
}
