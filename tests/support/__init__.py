"""Test helpers shared across suites: fakes that speak real protocols."""
