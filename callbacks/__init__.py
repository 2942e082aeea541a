"""Lightning callbacks: training schedule, speed-ups and side effects (result files, overlays)."""

from callbacks.fast_path import FastPath
from callbacks.lr_drop_then_stop import LRDropThenStop
from callbacks.overlays import PredictionOverlays
from callbacks.results_writer import ResultsWriter

__all__ = ["FastPath", "LRDropThenStop", "PredictionOverlays", "ResultsWriter"]
