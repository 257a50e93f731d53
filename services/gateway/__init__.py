"""The gateway: Helm's dashboard, REST API, WebSocket and chat relay, read from Redis."""
