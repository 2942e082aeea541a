"""Reproducing the paper: one grid point (`run`), sweeps, tables, figures and the miniature reproduction."""
