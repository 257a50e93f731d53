"""The worker service: the execution plane."""
