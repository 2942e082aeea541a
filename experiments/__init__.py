"""Entry points, configs and sweeps of the microseg suite (`python -m experiments ...`)."""
