"""Data-pipeline half of `python -m experiments bench`: augmented training samples per second.

Training is only as fast as its loader: for each data set and DataLoader worker count this times how
many augmented training samples per second the real pipeline (decode cache → albumentations → batch)
delivers, to set beside the models' consumption rate (train-step img/s). Uses the NASA sets when they
are in the data root, else synthetic micrographs of the same size and kind (said in the table).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from datamodules.download import verify
from datamodules.io import default_root

#: data sets timed by default: one per augmentation protocol (Super: whole 512²; EBC: 512² crops of 1024²)
SETS = ("super1", "ebc1")


@dataclass
class DataResult:
    dataset: str
    workers: int
    samples_per_s: float
    source: str  # "NASA" or "synthetic"


def datamodule(name: str, workers: int, batch: int, root: Path):
    """The set's real training pipeline; synthetic micrographs of the same kind when the set is absent."""
    from datamodules import Synthetic
    from datamodules.nasa import NASA_SETS

    # persistent workers, as the dataset configs train: a set with one training image (Super3) would
    # otherwise start its workers anew for every batch
    options = {"batch_size": batch, "num_workers": workers, "persistent_workers": True}
    if not verify(root / NASA_SETS[name].folder):
        return NASA_SETS[name](root=str(root), **options), "NASA"
    kind, size = ("ebc", 1024) if name.startswith("ebc") else ("super", 512)
    crop = {"crop_size": 512} if kind == "ebc" else {}
    return Synthetic(kind=kind, size=size, num_train=8, num_val=1, num_test=1, **crop, **options), "synthetic"


def time_loader(name: str, workers: int, batch: int, batches: int, root: Path) -> DataResult:
    """Samples/s over ``batches`` batches after the first (worker start-up and decoding excluded)."""
    dm, source = datamodule(name, workers, batch, root)
    dm.setup("fit")
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            count += len(next(it)["image"])
        except StopIteration:  # a short epoch: start the next one
            it = iter(loader)
    return DataResult(name, workers, count / (time.perf_counter() - start), source)


def run(
    sets: list[str], workers: list[int], batch: int, batches: int, root: Path | None = None
) -> list[DataResult]:
    root = Path(root or default_root())
    results = []
    for name in sets:
        for n in workers:
            result = time_loader(name, n, batch, batches, root)
            print(
                f"{name:<8} {n} workers {result.samples_per_s:8.2f} samples/s ({result.source})", flush=True
            )
            results.append(result)
    return results


def default_workers() -> list[int]:
    """0, 2 and every core (N), without repeats."""
    return sorted({0, 2, os.cpu_count() or 1})


def table(results: list[DataResult], consumption: float | None) -> str:
    """Samples/s per set and worker count, and how many times the fastest model's step rate that is."""
    head = f"{'data set':<10} {'workers':>7} {'samples/s':>10} {'vs model':>9}  source"
    lines = [head]
    for r in results:
        ratio = f"{r.samples_per_s / consumption:8.2f}x" if consumption else f"{'-':>9}"
        lines.append(f"{r.dataset:<10} {r.workers:>7} {r.samples_per_s:10.2f} {ratio}  {r.source}")
    if consumption:
        lines.append(f"(model consumption: the fastest fp32 train step above, {consumption:.2f} img/s)")
    return "\n".join(lines)
