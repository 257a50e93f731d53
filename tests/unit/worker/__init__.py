"""Unit tests of the worker: no I/O."""
