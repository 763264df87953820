"""Benchmarks: python -m bench.<name> --size small|full."""
