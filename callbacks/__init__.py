"""Lightning callbacks: training schedule and side effects (result files, overlays)."""
