"""Benchmarks of the gateway against a fast mock upstream: `python -m bench`."""
