"""Benchmarks (`python -m experiments bench`): timings and ratios measured in one run, never asserted in tests."""
