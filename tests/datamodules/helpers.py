"""Tiny on-disk data sets for the data tests (a few pixels per file, written in milliseconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from datamodules.download import EXPECTED


def super_overlay(mask: np.ndarray) -> np.ndarray:
    """An RGBA overlay as NASA draws it: blue secondary, red tertiary, grey-ish matrix."""
    rgba = np.full((*mask.shape, 4), (120, 120, 120, 255), np.uint8)
    rgba[mask == 1] = (0, 0, 255, 255)
    rgba[mask == 2] = (255, 0, 0, 255)
    return rgba


def write_set(root: Path, name: str, size: int = 8, counts: dict[str, int] | None = None) -> Path:
    """``root/<name>`` laid out like the NASA benchmark, with ``EXPECTED`` counts unless given."""
    rng = np.random.default_rng(0)
    for split, n in (counts or EXPECTED[name]).items():
        (root / name / split).mkdir(parents=True, exist_ok=True)
        (root / name / f"{split}_annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            labels = rng.integers(0, 3, (size, size)).astype(np.uint8)
            tifffile.imwrite(root / name / split / f"img{i}.tif", image)
            if name.startswith("Super"):
                tifffile.imwrite(root / name / f"{split}_annot" / f"img{i}_mask.tif", super_overlay(labels))
            else:
                tifffile.imwrite(root / name / f"{split}_annot" / f"img{i}.tif", labels)
    return root / name
