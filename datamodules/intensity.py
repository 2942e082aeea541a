"""The intensity rule: how any bit depth becomes the 8-bit image a network sees, in training and in predict.

One rule is chosen per data set (``data.intensity``), stored in the checkpoint and applied again by
`predict`, so a 16-bit TIFF becomes the same input in both. 8-bit images are never changed (the
benchmark sets and the published encoders are 8-bit); the rules differ only for other types:

- ``percentile`` (default): the 0.5th-99.5th percentile of the image's finite values maps to 0-255
  (min-max when the two are equal). It serves any detector depth (12/14-bit data in 16-bit words),
  float TIFFs of any range and images with a few hot pixels, much as an auto-contrast view does.
- ``bit_depth``: integers divided by the smallest power-of-two range holding their maximum (a 12-bit
  image by 4095); floats as 0-1, or divided by their maximum when it is above 1. This was the training
  rule before the rule was stored, so checkpoints without one use it.
- ``full``: integers divided by their type's range (65535 for 16-bit); floats taken as 0-1 and clipped.

NaN and infinite pixels (e.g. the undefined border of a registered or stitched image) are set to the
darkest value, with a warning naming the file and how many there are; an image with no finite pixel
is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np

IntensityRule = Literal["percentile", "bit_depth", "full"]
INTENSITY_RULES: tuple[str, ...] = ("percentile", "bit_depth", "full")
DEFAULT_RULE: IntensityRule = "percentile"
#: the rule of checkpoints that do not record one (training used it before it was stored)
UNRECORDED_RULE: IntensityRule = "bit_depth"
PERCENTILES = (0.5, 99.5)


def _finite(array: np.ndarray, source: Path | str) -> np.ndarray:
    """Float data with NaN/inf replaced by the lowest finite value (warned about)."""
    data = array.astype(np.float32)  # exact for 16-bit integers, half the memory of float64
    finite = np.isfinite(data)
    if finite.all():
        return data
    if not finite.any():
        raise ValueError(
            f"{source}: every pixel is NaN or infinite; re-export the image from the microscope software"
        )
    bad = int((~finite).sum())
    warnings.warn(
        f"{source}: {bad} pixel(s) ({100 * bad / data.size:.2g} %) are NaN or infinite and are read as "
        "the darkest value; crop them away or re-export the image if they are not empty border",
        stacklevel=3,
    )
    return np.where(finite, data, data[finite].min())


def _bounds(data: np.ndarray, dtype: np.dtype, rule: str) -> tuple[float, float]:
    """The values that map to 0 and 255."""
    if rule == "percentile":
        low, high = (float(v) for v in np.percentile(data, PERCENTILES))
        return (low, high) if high > low else (float(data.min()), float(data.max()))
    if np.issubdtype(dtype, np.floating):
        peak = float(data.max())
        return 0.0, peak if rule == "bit_depth" and peak > 1.0 else 1.0
    if rule == "full":
        return 0.0, float(np.iinfo(dtype).max)
    bits = max(8, int(data.max()).bit_length())  # 12-bit data in a 16-bit word stays bright
    return 0.0, float(2**bits - 1)


def intensity_bounds(
    array: np.ndarray, rule: str = DEFAULT_RULE, source: Path | str = "image"
) -> tuple[float, float]:
    """The values ``rule`` maps to 0 and 255 in ``array``; for an image read in strips, pass a sample of it
    (with the image's dtype) and give the result to `to_uint8` for every strip."""
    return _bounds(_finite(array, source), array.dtype, rule)


def to_uint8(
    array: np.ndarray,
    rule: str = DEFAULT_RULE,
    source: Path | str = "image",
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """Pixel values of any type as uint8 by ``rule`` (see the module docstring); ``source`` names the file.

    ``bounds`` (from `intensity_bounds` of the whole image) replaces those of ``array`` itself.
    """
    if rule not in INTENSITY_RULES:
        raise ValueError(f"unknown intensity rule {rule!r}; use one of {', '.join(INTENSITY_RULES)}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(
            f"{source}: unsupported pixel type {array.dtype}; save the image as 8/16-bit integers or float"
        )
    data = _finite(array, source)
    low, high = bounds or _bounds(data, array.dtype, rule)
    if high <= low:  # a flat image stays flat rather than dividing by zero
        return np.zeros(array.shape, np.uint8)
    scaled = np.clip((data - low) * (255.0 / (high - low)), 0.0, 255.0)
    return (scaled + 0.5).astype(np.uint8)
