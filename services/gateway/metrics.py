"""The gateway's Prometheus metrics, declared against an injected registry.

Labels stay bounded: ``route`` is the route template (``/agents/{agent_id}``), never a raw path;
``agent`` comes only from agents that exist.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """Everything the gateway counts: HTTP, WebSocket fan-out, chat and operator commands."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "helm_gateway_http_requests_total",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "helm_gateway_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ws_clients = Gauge(
            "helm_gateway_ws_clients", "WebSocket clients connected", registry=registry
        )
        self.ws_dropped = Counter(
            "helm_gateway_ws_dropped_clients_total",
            "WebSocket clients dropped because they could not keep up",
            ["reason"],
            registry=registry,
        )
        self.ws_messages = Counter(
            "helm_gateway_ws_messages_total",
            "Messages sent to WebSocket clients, by type",
            ["type"],
            registry=registry,
        )
        self.chat = Counter(
            "helm_gateway_chat_requests_total",
            "Chat queries relayed to agents, by outcome",
            ["agent", "outcome"],
            registry=registry,
        )
        self.chat_latency = Histogram(
            "helm_gateway_chat_duration_seconds",
            "Time from a chat query to the agent's answer",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commands = Counter(
            "helm_gateway_operator_commands_total",
            "Operator commands published on helm.control, by action",
            ["action"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "helm_gateway_auth_failures_total",
            "Requests refused for a missing or wrong token",
            ["reason"],
            registry=registry,
        )
