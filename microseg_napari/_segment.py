"""What the napari widget does, without Qt: segment an image as `predict` does, measure, save masks.

The image goes through predict's own preparation (`experiments.apply.preprocess.prepare`: the one
reader, the checkpoint's intensity rule and resampling) and the same overlapping windows
(`lightning_modules.inference.segment`, the tiled engine); a layer that came from a file is read from
that file, an in-memory layer from a temporary TIFF of its data. `Stepper` wraps the network to count
windows (for the progress bar) and to stop between two windows when the user cancels.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from torch import nn

from datamodules.pixel_size import Calibration, PixelSize
from experiments.apply.imageio import write_index_mask
from experiments.apply.mask_classes import measured_kinds
from experiments.apply.measurements import measure_mask
from experiments.apply.preprocess import prepare
from lightning_modules import inference
from lightning_modules.checkpoint import SegmenterMeta


class Cancelled(Exception):
    """The user stopped the segmentation."""


class Stepper(nn.Module):
    """``net`` that reports each batch of windows to ``advance`` and raises `Cancelled` once ``stop`` is set."""

    def __init__(self, net: nn.Module, advance: Callable[[int], None], stop: threading.Event) -> None:
        super().__init__()
        self.net, self.advance, self.stop = net, advance, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stop.is_set():
            raise Cancelled
        out = self.net(x)
        self.advance(len(x))
        return out


def window_count(height: int, width: int, tile: int, overlap: float) -> int:
    """How many windows the engine runs over a (height, width) network input."""
    return inference.WindowGrid.of(height, width, tile, overlap).count


@dataclass
class Segmentation:
    mask: np.ndarray  # uint8 (H, W) class indices on the image's own grid
    pixel: PixelSize | None
    pixel_source: str | None


def segment(
    net: nn.Module,
    meta: SegmenterMeta,
    data: np.ndarray,
    source: Path | None,
    pixel: PixelSize | None,
    tile: int = 512,
    overlap: float = 0.25,
    on_total: Callable[[int], None] = lambda n: None,
    advance: Callable[[int], None] = lambda n: None,
    stop: threading.Event | None = None,
) -> Segmentation:
    """The class mask of an image layer's ``data`` (or of its ``source`` file), as `predict` makes it."""
    given = Calibration(pixel, "the widget's pixel size") if pixel else None
    with tempfile.TemporaryDirectory() as tmp:
        path = source if source is not None and source.is_file() else Path(tmp) / "layer.tif"
        if path.parent == Path(tmp):
            tifffile.imwrite(path, np.asarray(data))
        prepared = prepare(path, meta, meta.intensity, given)
    on_total(window_count(*prepared.tensor.shape[1:], tile, overlap))
    stepper = Stepper(net, advance, stop or threading.Event())
    size = prepared.image.shape[:2]
    mask, _ = inference.segment(stepper, prepared.tensor, meta.num_classes, size, tile=tile, overlap=overlap)
    cal = prepared.calibration
    return Segmentation(mask, cal.size if cal else None, cal.source if cal else None)


def measurement_rows(
    mask: np.ndarray, class_names: list[str], class_kinds: list[str] | None, pixel: PixelSize | None
) -> list[dict]:
    """One table row per class: area %, and particle count and mean size, or a layer's mean thickness.

    Classes are measured by the checkpoint's kinds (`measured_kinds`: the defaults where it has none).
    """
    kinds = measured_kinds(class_names, class_kinds)
    clipped = np.asarray(mask, dtype=np.int64).clip(0, len(class_names) - 1)
    summary = measure_mask(clipped, class_names, kinds, pixel)["summary"]
    unit = pixel.unit if pixel else "px"
    rows = []
    for name in class_names:
        row = {"class": name, "area %": round(100 * summary["area_fraction"][name], 2)}
        if name in summary["particles"]:
            entry = summary["particles"][name]
            sizes = entry.get(f"equivalent_diameter_{unit}", entry["equivalent_diameter_px"])
            row.update({"particles": entry["count"], f"mean diameter ({unit})": round(sizes["mean"], 2)})
        if name in summary["layers"]:
            entry = summary["layers"][name]
            thickness = entry.get(f"thickness_{unit}", entry["thickness_px"])
            row[f"mean thickness ({unit})"] = round(thickness["mean"], 2)
        rows.append(row)
    return rows


def save_masks(
    folder: Path, name: str, mask: np.ndarray, data: np.ndarray, source: Path | None, overwrite: bool = False
) -> tuple[Path, Path]:
    """``images/<name>`` + ``masks/<name>.png`` (class indices) under ``folder``: FolderSegmentation's layout.

    The image is the layer's file copied as it is (a TIFF of its data for an in-memory layer), so the
    training reader sees the original pixels. Existing files are kept unless ``overwrite``.
    """
    image_path = (
        folder / "images" / (f"{name}{source.suffix}" if source and source.is_file() else f"{name}.tif")
    )
    mask_path = folder / "masks" / f"{name}.png"
    existing = [p for p in (image_path, mask_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; choose another folder or tick 'overwrite'")
    for path in (image_path, mask_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    if source and source.is_file():
        shutil.copy2(source, image_path)
    else:
        tifffile.imwrite(image_path, np.asarray(data))
    write_index_mask(np.asarray(mask), mask_path)
    return image_path, mask_path


def classes_yaml(class_names: list[str]) -> str:
    """The ``classes:`` block of a FolderSegmentation config for masks saved by `save_masks`."""
    return "classes:\n" + "".join(f"  - {{name: {n}, index: {i}}}\n" for i, n in enumerate(class_names))
