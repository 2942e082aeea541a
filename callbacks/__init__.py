"""Lightning callbacks: training schedule and side effects (result files, overlays)."""

from callbacks.lr_drop_then_stop import LRDropThenStop
from callbacks.overlays import PredictionOverlays
from callbacks.results_writer import ResultsWriter

__all__ = ["LRDropThenStop", "PredictionOverlays", "ResultsWriter"]
