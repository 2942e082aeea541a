"""Benchmarks, measured in one run and never asserted in tests: train-step and data-loading timings
(`python -m experiments bench`), and the error of `measure` on analytic shapes (`measure-accuracy`)."""
