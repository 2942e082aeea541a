"""Find the part of a micrograph that is specimen, not annotation (SEM data bars, scale bars).

The CS-UNet paper removes scale bars and annotation bands before tiling MicroLite, so that a classifier
cannot learn a class from the instrument's caption. Two kinds of annotation are handled, both by
cropping rows (the specimen above or below stays intact):

* **Data bands** at the bottom or top edge: a run of rows dominated by one grey value (typically a
  black or white bar), possibly crossed by text. A row belongs to the band when at least
  `flat_fraction` of its pixels are within `tolerance` of the band's value (the edge row's median).
  Short runs of busier rows (dense text lines) are bridged. The band's value must differ from the
  specimen just inside it by `min_contrast` grey levels (a bar, not a smooth specimen). A run that would exceed `max_fraction`
  of the height is the specimen's own flat background, not a bar, and is left alone.
* **Scale bars** drawn onto the specimen near the bottom: a thin, solid, horizontal component of
  saturated pixels (near-black or near-white). The rows from a margin above the bar down are cut, so
  that the bar's length label (usually just above or below it) goes too.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label, regionprops


def _band_length(
    rows: np.ndarray, tolerance: int, flat_fraction: float, max_gap: int, limit: int, min_contrast: int
) -> int:
    """Number of leading rows of `rows` (edge first) that form an annotation band, 0 if none."""
    value = np.median(rows[0])
    flat = (np.abs(rows[: limit + 1].astype(np.int16) - value) <= tolerance).mean(axis=1) >= flat_fraction
    if not flat[0]:
        return 0
    length, gap = 0, 0
    for i, is_flat in enumerate(flat):
        if is_flat:
            length, gap = i + 1, 0
        else:
            gap += 1
            if gap > max_gap:
                break
    if length > limit:
        return 0
    inside = np.median(rows[length : length + 8])
    return length if abs(float(inside) - float(value)) >= min_contrast else 0


def _scale_bar_top(grey: np.ndarray, search_fraction: float) -> int | None:
    """Top row of the highest scale bar in the bottom `search_fraction` of the image, None if none."""
    h, w = grey.shape
    start = int(h * (1 - search_fraction))
    region = grey[start:]
    tops = []
    for saturated in (region <= 8, region >= 247):
        for prop in regionprops(label(saturated, connectivity=2)):
            r0, c0, r1, c1 = prop.bbox
            bar_h, bar_w = r1 - r0, c1 - c0
            is_bar = (
                bar_h <= max(3, 0.04 * h)
                and 0.04 * w <= bar_w <= 0.6 * w
                and bar_w >= 5 * bar_h
                and prop.area >= 0.85 * bar_h * bar_w
            )
            if is_bar:
                tops.append(start + r0)
    return min(tops) if tops else None


def specimen_rows(
    grey: np.ndarray,
    tolerance: int = 12,
    min_contrast: int = 40,
    flat_fraction: float = 0.6,
    max_fraction: float = 0.3,
    max_gap: int = 6,
    scale_bar_search: float = 0.25,
    label_margin: float = 0.06,
) -> tuple[int, int]:
    """Rows ``(top, bottom)`` (bottom exclusive) of a grey uint8 image that hold no annotation.

    Returns the whole height when nothing is found. See the module docstring for the rules.
    """
    if grey.ndim != 2:
        raise ValueError(f"specimen_rows expects a 2-D grey image, got shape {grey.shape}")
    h = grey.shape[0]
    limit = int(h * max_fraction)
    band = (tolerance, flat_fraction, max_gap, limit, min_contrast)
    top = _band_length(grey, *band)
    bottom = h - _band_length(grey[::-1], *band)
    bar = _scale_bar_top(grey[top:bottom], scale_bar_search)
    if bar is not None:
        bottom = top + max(int(bar - label_margin * h), 0)
    if bottom - top < h // 2:  # an implausible crop: keep the image rather than a sliver of it
        return 0, h
    return top, bottom
