"""ArchiveWriter: each image's ``<stem>.summary.json`` as soon as it is predicted, so a killed run loses nothing.

The file is the image's "done" mark: `predict` writes the mask, overlay and measurements first and this
file last (to a temporary name, then `os.replace`, so it is never half-written). It holds what the folder
summary needs of the image (its predictions.json record and measurement summary, or its failure line) and
the settings it was predicted with, so a resumed run can merge it with the images it predicts itself and
refuse to mix outputs made with other settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

MARKER_SUFFIX = ".summary.json"


def marker_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}{MARKER_SUFFIX}"


def _plain(value: object) -> object:
    """JSON for the numpy scalars and arrays (a layer's thickness samples) that measurements hold."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_marker(
    out_dir: Path,
    stem: str,
    image: Path,
    outcome: tuple[dict | None, dict | None, str | None],
    settings: dict[str, str],
) -> Path:
    """Write one image's mark atomically (temporary file, then rename).

    ``outcome`` is `predict_one`'s (predictions.json record, measurement summary, failure line).
    """
    record, summary, failure = outcome
    entry = {
        "input": str(image),
        "record": record,
        "summary": summary,
        "failure": failure,
        "settings": settings,
    }
    path = marker_path(out_dir, stem)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(entry, default=_plain, ensure_ascii=False))
    os.replace(tmp, path)
    return path


def read_marker(out_dir: Path, stem: str) -> dict | None:
    """The entry of ``<stem>.summary.json``, or None when it is missing or unreadable (not done)."""
    try:
        entry = json.loads(marker_path(out_dir, stem).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


class ArchiveWriter(BasePredictionWriter):
    """Write each predicted image's mark on the rank that predicted it, then wait for every rank at the end.

    ``predict_step`` returns ``{"stem", "image", "outcome"}`` (see `write_marker`) for its one image (batch size 1: images
    differ in size). Lightning's predict loop shards the images with `UnrepeatedDistributedSamplerWrapper`,
    which gives each rank a disjoint share and pads nothing, so every image is predicted and written once.
    The barrier in `on_predict_end` lets rank 0 merge the marks only after every rank has written its own.
    """

    def __init__(self, out_dir: Path, settings: dict[str, str]) -> None:
        super().__init__(write_interval="batch")
        self.out_dir = out_dir
        self.settings = settings

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        write_marker(
            self.out_dir, prediction["stem"], prediction["image"], prediction["outcome"], self.settings
        )

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier("archive_written")
