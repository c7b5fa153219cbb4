"""Helpers for tests, the demo and the benchmark: a moto server on loopback, and exports in AWS's exact layout."""
