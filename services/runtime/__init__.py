"""The runtime service: Helix as a service."""
