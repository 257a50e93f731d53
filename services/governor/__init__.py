"""The governor service: agent, service and organisation governors."""
