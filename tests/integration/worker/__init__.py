"""Integration tests of the worker: real SDKs against real local servers."""
