"""The error bars a reviewer asks for: confidence intervals of area fractions, and number densities.

* **Across the images of a folder**: the area fraction of a class is the mean over images with its
  95 % Student-t interval, mean ± t(0.975, n-1) · s / √n (s: standard deviation over the n images),
  which treats each image as one independent field.
* **Within one image**, in the spirit of ASTM E562 (manual point count of volume fraction): E562 lays
  a systematic grid of P_T points (16 to 100) on each of n fields, counts the points in the phase,
  and reports the mean point fraction P_P, its standard deviation s over the fields, the 95 % interval
  ± t·s/√n and the relative accuracy %RA = interval / P_P. Here the fields are a k x k tiling of the
  image (default 4 x 4) and *every pixel* is a grid point, so the counting error of a coarse grid is
  gone and the interval says only how much the phase varies across the image. It is not a substitute
  for more images: fields of one micrograph are neighbours, not independent samples of the material.
* **Number density** per area, counting a particle cut by the image frame as one half (the Jeffries
  planimetric convention of ASTM E112), so that cut particles neither inflate nor vanish.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
FIELDS = 4  # fields per image side for the within-image error


def t_interval(values: list[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """Mean, standard deviation and Student-t confidence interval of independent values.

    With fewer than two values there is no interval: ``ci_low``/``ci_high``/``half_width`` are None.
    """
    values = np.asarray(values, dtype=np.float64)
    n = int(values.size)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "half_width": None, "ci_low": None, "ci_high": None}
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n))
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "half_width": half,
        "ci_low": mean - half,
        "ci_high": mean + half,
    }


def field_fractions(mask: np.ndarray, num_classes: int, fields: int = FIELDS) -> np.ndarray:
    """Area fraction of every class in each of ``fields`` x ``fields`` tiles: shape (fields², classes)."""
    tiles = [
        tile
        for band in np.array_split(mask, fields, axis=0)
        for tile in np.array_split(band, fields, axis=1)
        if tile.size
    ]
    return np.stack([np.bincount(t.ravel(), minlength=num_classes)[:num_classes] / t.size for t in tiles])


def within_image_error(mask: np.ndarray, class_names: list[str], fields: int = FIELDS) -> dict:
    """Per class: the E562-style standard error and 95 % interval of the area fraction over the fields."""
    fractions = field_fractions(mask, len(class_names), fields)
    out = {}
    for index, name in enumerate(class_names):
        interval = t_interval(fractions[:, index])
        mean, half = interval["mean"], interval["half_width"]
        out[name] = {
            "fields": interval["n"],
            "standard_error": None if interval["std"] is None else interval["std"] / np.sqrt(interval["n"]),
            "half_width": half,
            "relative_accuracy": half / mean if half is not None and mean > 0 else None,
        }
    return out


def number_density(inside: int, cut: int, area: float) -> float:
    """Particles per unit area with the frame-cut ones counting one half (ASTM E112's Jeffries rule)."""
    return (inside + 0.5 * cut) / area if area > 0 else float("nan")
