"""The observer service: baselines and drift."""
