"""Prepare an image for a trained network exactly as its training images were prepared, and map back.

Training (`datamodules.base`) reads a micrograph with `datamodules.io.read_micrograph` under the data
set's intensity rule, resizes it by ``scale`` with `datamodules.transforms.resize_image` and
normalises it with `datamodules.transforms.eval_transform`. `prepare` runs the same three functions
with the checkpoint's values, so for a training image it returns the very tensor training saw. The
resize factor is the ratio of the image's pixel size to the one the network was trained at when both
are known (a micrograph at another magnification is brought to the training one), else the training
``scale`` (the image is taken to be at the training images' resolution). The engine
(`lightning_modules.inference.resample_strips`) resamples the logits back to the image's own grid
(bilinear), so the argmax mask has the input's size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datamodules.io import read_micrograph
from datamodules.pixel_size import Calibration, PixelSize
from datamodules.transforms import eval_transform, resize_image, scaled_size
from lightning_modules.checkpoint import SegmenterMeta

#: resize factors beyond these suggest a wrong pixel size (in the file or on the command line)
PLAUSIBLE_FACTORS = (1 / 16, 16.0)


@dataclass(frozen=True)
class Prepared:
    """An input ready for the network, and what was done to get it."""

    tensor: torch.Tensor  # float32 (3, h, w), normalised, at the training resolution
    image: np.ndarray  # uint8 (H, W, 3) on the input's own grid, for overlays
    calibration: Calibration | None  # the pixel size used (--pixel-size, else the file's), if any
    factor: float  # network size / input size
    basis: str  # why that factor, for the report


def parse_resample(text: str) -> float | None:
    """``auto`` -> None (decide per image), ``none`` -> 1, a positive number -> itself."""
    if text == "auto":
        return None
    if text == "none":
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise ValueError(f"--resample {text!r}: use auto, none or a positive factor such as 0.5")
    return factor


def resample_factor(
    meta: SegmenterMeta, calibration: Calibration | None, forced: float | None, path: Path
) -> tuple[float, str]:
    """The resize factor for image ``path`` and the reason for it (see the module docstring)."""
    if forced is not None:
        return forced, "--resample none" if forced == 1.0 else f"--resample {forced:g}"
    trained = PixelSize.from_nm(meta.pixel_size_nm) if meta.pixel_size_nm else None
    if trained and calibration:
        return calibration.size.nm / meta.pixel_size_nm, f"to the training pixel size {trained}"
    if trained:
        warnings.warn(
            f"{path}: the network was trained at {trained} per pixel, but this image records no pixel "
            "size, so it is taken to have the training images' resolution; pass --pixel-size if not",
            stacklevel=2,
        )
    if meta.scale != 1.0:
        return meta.scale, f"the training scale {meta.scale:g}"
    return 1.0, "trained at the images' own resolution"


def prepare(
    path: Path,
    meta: SegmenterMeta,
    intensity: str,
    calibration: Calibration | None = None,
    forced_factor: float | None = None,
) -> Prepared:
    """Read ``path`` with ``intensity`` and resample it (see the module docstring).

    ``calibration`` (``--pixel-size``) overrides the file's own pixel size; ``forced_factor``
    (``--resample``) overrides the choice of factor.
    """
    micrograph = read_micrograph(path, intensity)
    calibration = calibration or micrograph.calibration
    factor, basis = resample_factor(meta, calibration, forced_factor, path)
    if not PLAUSIBLE_FACTORS[0] <= factor <= PLAUSIBLE_FACTORS[1]:
        used = f" ({calibration.size} from {calibration.source})" if calibration else ""
        warnings.warn(
            f"{path}: resampled by x{factor:.3g} ({basis}); check the pixel size{used}", stacklevel=2
        )
    resized = resize_image(micrograph.image, scaled_size(*micrograph.image.shape[:2], factor))
    tensor = eval_transform(meta.mean, meta.std)(image=resized)["image"].float()
    return Prepared(tensor, micrograph.image, calibration, factor, basis)
