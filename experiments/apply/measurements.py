"""Microstructure measurements from an index mask: phase fractions, particles, layer thickness.

What a materials scientist would otherwise do by hand in ImageJ. All numbers are in pixels, and also
in physical units when a pixel size is given (lengths in its unit, areas in its unit squared).
Particles are the 8-connected regions of one class (scikit-image `label` + `regionprops`).
A layer class (EBC `oxide`) is measured along the layer instead: its thickness in every column that
crosses it (rows when the layer runs vertically), i.e. the number of layer pixels in that column.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from skimage.measure import label, regionprops

from datamodules.pixel_size import PixelSize

LAYER_CLASSES = ("oxide",)


def area_fractions(mask: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Fraction of the image's pixels in each class."""
    counts = np.bincount(mask.ravel(), minlength=len(class_names))[: len(class_names)]
    return {name: float(c) / mask.size for name, c in zip(class_names, counts, strict=True)}


def particles(mask: np.ndarray, class_index: int, pixel: PixelSize | None = None) -> list[dict]:
    """One row per connected region of ``class_index``: area, equivalent diameter, aspect ratio, ...

    ``aspect_ratio`` is major/minor axis of the region's inertia ellipse (NaN for one-pixel-wide
    lines); ``touches_border`` marks particles cut by the image edge, which bias sizes downwards.
    """
    labels = label(mask == class_index, connectivity=2)
    height, width = mask.shape
    rows = []
    for region in regionprops(labels):
        top, left, bottom, right = region.bbox
        minor = region.axis_minor_length
        row = {
            "particle": region.label,
            "centroid_row": round(region.centroid[0], 2),
            "centroid_col": round(region.centroid[1], 2),
            "area_px": int(region.area),
            "equivalent_diameter_px": float(region.equivalent_diameter_area),
            "major_axis_px": float(region.axis_major_length),
            "minor_axis_px": float(minor),
            "aspect_ratio": float(region.axis_major_length / minor) if minor > 0 else float("nan"),
            "touches_border": bool(top == 0 or left == 0 or bottom == height or right == width),
        }
        if pixel is not None:
            row[f"area_{pixel.unit}2"] = row["area_px"] * pixel.value**2
            row[f"equivalent_diameter_{pixel.unit}"] = row["equivalent_diameter_px"] * pixel.value
        rows.append(row)
    return rows


def layer_thickness(mask: np.ndarray, class_index: int) -> tuple[np.ndarray, str]:
    """Thickness in pixels of a layer class at every position along it, and the axis it runs along.

    The layer is taken to run along the image axis over which it extends further (horizontal for the
    EBC cross-sections); positions where it is absent count as thickness 0.
    """
    layer = mask == class_index
    if not layer.any():
        return np.zeros(0, dtype=np.int64), "columns"
    rows_hit, cols_hit = np.nonzero(layer.any(axis=1))[0], np.nonzero(layer.any(axis=0))[0]
    horizontal = np.ptp(cols_hit) >= np.ptp(rows_hit)
    return layer.sum(axis=0 if horizontal else 1).astype(np.int64), "columns" if horizontal else "rows"


def summarise(values: np.ndarray) -> dict[str, float]:
    """count/mean/std/min/max/median of a list of numbers (NaNs ignored; empty → zeros)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"count": 0, "mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "median": 0.0}
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "median": float(np.median(values)),
    }


def _scaled(stats: dict[str, float], factor: float) -> dict[str, float]:
    return {k: (v if k == "count" else v * factor) for k, v in stats.items()}


def measure_mask(
    mask: np.ndarray,
    class_names: list[str],
    pixel: PixelSize | None = None,
    layer_classes: tuple[str, ...] = LAYER_CLASSES,
) -> dict:
    """Every measurement of one mask as a JSON-ready dict, plus per-particle rows and layer profiles.

    Returns ``{"summary": ..., "particles": {class: rows}, "thickness": {class: profile}}``; class 0
    (matrix/background) is only measured by its area fraction.
    """
    if mask.size and int(mask.max()) >= len(class_names):
        raise ValueError(
            f"mask holds class index {int(mask.max())} but only {len(class_names)} class names were given "
            f"({', '.join(class_names)}); pass --class-names with one name per class"
        )
    summary: dict = {
        "height_px": int(mask.shape[0]),
        "width_px": int(mask.shape[1]),
        "pixel_size": asdict(pixel) if pixel else None,
        "area_fraction": area_fractions(mask, class_names),
        "particles": {},
        "layers": {},
    }
    per_class: dict[str, list[dict]] = {}
    profiles: dict[str, np.ndarray] = {}
    for index, name in enumerate(class_names[1:], start=1):
        if name in layer_classes:
            profile, along = layer_thickness(mask, index)
            stats = summarise(profile[profile > 0])
            entry = {"along": along, "coverage": float((profile > 0).mean()) if profile.size else 0.0}
            entry["thickness_px"] = stats
            if pixel:
                entry[f"thickness_{pixel.unit}"] = _scaled(stats, pixel.value)
            summary["layers"][name] = entry
            profiles[name] = profile
            continue
        rows = particles(mask, index, pixel)
        per_class[name] = rows
        entry = {
            "count": len(rows),
            "count_not_touching_border": sum(not r["touches_border"] for r in rows),
            "equivalent_diameter_px": summarise([r["equivalent_diameter_px"] for r in rows]),
            "area_px": summarise([r["area_px"] for r in rows]),
            "aspect_ratio": summarise([r["aspect_ratio"] for r in rows]),
        }
        if pixel:
            entry[f"equivalent_diameter_{pixel.unit}"] = _scaled(entry["equivalent_diameter_px"], pixel.value)
            entry[f"area_{pixel.unit}2"] = _scaled(entry["area_px"], pixel.value**2)
        summary["particles"][name] = entry
    return {"summary": summary, "particles": per_class, "thickness": profiles}
