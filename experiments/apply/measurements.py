"""Microstructure measurements from an index mask: phase fractions, particles, layer thickness.

What a materials scientist would otherwise do by hand in ImageJ. Each class is measured by its kind
(`datamodules.class_kinds`): every class by its area fraction (every pixel counts) and its
within-image error (`experiments.apply.uncertainty`); ``particles`` one by one, touching ones split
and those cut by the image edge kept out of the size and shape statistics (`experiments.apply.particles`);
a ``layer`` by its thickness normal to the layer at every position along it (`experiments.apply.layers`).
All numbers are in pixels, and also in physical units when a pixel size is given (lengths in its unit,
areas in its unit squared). docs/measurements.md gives each quantity's definition and its error on
shapes with a known answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from datamodules.pixel_size import PixelSize
from experiments.apply.layers import LayerProfile, axis_extent, layer_profile
from experiments.apply.particles import SPLIT_DEPTH, SPLIT_MIN_AREA, label_particles, particle_rows
from experiments.apply.uncertainty import FIELDS, number_density, within_image_error


@dataclass(frozen=True)
class MeasureSettings:
    """How particles are separated and which ones the statistics use (defaults: docs/measurements.md)."""

    split: bool = True
    split_depth: float = SPLIT_DEPTH
    split_min_area: int = SPLIT_MIN_AREA
    include_edge_particles: bool = False
    fields: int = FIELDS


@dataclass(frozen=True)
class Layer:
    """A layer class's thickness samples and its vertical extent (layer pixels per image column)."""

    profile: LayerProfile
    extent: np.ndarray
    extent_along: str


def area_fractions(mask: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Fraction of the image's pixels in each class (counted in bands: bincount widens to 8 bytes a pixel)."""
    bands = np.array_split(mask, max(1, mask.size >> 24))
    counts = sum(np.bincount(b.ravel(), minlength=len(class_names))[: len(class_names)] for b in bands)
    return {name: float(c) / mask.size for name, c in zip(class_names, counts, strict=True)}


def summarise(values: np.ndarray | list[float]) -> dict[str, float]:
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


def _with_units(entry: dict, key: str, values: list[float], pixel: PixelSize | None, power: int = 1) -> None:
    """``entry[<key>_px] = summarise(values)``, and the same in the pixel's unit (``power`` 2: areas)."""
    stats = summarise(values)
    entry[f"{key}_px"] = stats
    if pixel:
        factor = pixel.value**power
        unit = pixel.unit + ("2" if power == 2 else "")
        entry[f"{key}_{unit}"] = {k: (v if k == "count" else v * factor) for k, v in stats.items()}


def measure_particles(
    mask: np.ndarray, index: int, pixel: PixelSize | None, settings: MeasureSettings
) -> tuple[dict, list[dict], np.ndarray]:
    """Statistics of one particle class (counts, number density, sizes, shapes), its rows and labels.

    Rows of particles cut by the image edge get ``in_statistics: false`` (unless
    ``include_edge_particles``): they are counted but kept out of the size and shape statistics.
    """
    labels = label_particles(mask == index, settings.split, settings.split_depth, settings.split_min_area)
    rows = [
        _scaled_row(row, pixel)
        | {"in_statistics": settings.include_edge_particles or not row["touches_border"]}
        for row in particle_rows(labels)
    ]
    used = [r for r in rows if r["in_statistics"]]
    cut = sum(r["touches_border"] for r in rows)
    entry: dict = {
        "count": len(rows),
        "count_touching_border": cut,
        "count_in_statistics": len(used),
        "number_density_per_px2": number_density(len(rows) - cut, cut, mask.size),
    }
    if pixel:
        entry[f"number_density_per_{pixel.unit}2"] = entry["number_density_per_px2"] / pixel.value**2
    _with_units(entry, "equivalent_diameter", [r["equivalent_diameter_px"] for r in used], pixel)
    _with_units(entry, "area", [r["area_px"] for r in used], pixel, power=2)
    entry["aspect_ratio"] = summarise([r["aspect_ratio"] for r in used])
    return entry, rows, labels


def measure_layer(mask: np.ndarray, index: int, pixel: PixelSize | None) -> tuple[dict, Layer]:
    """Thickness statistics of one layer class (normal to the layer) and its vertical extent."""
    binary = mask == index
    profile = layer_profile(binary)
    extent, along = axis_extent(binary)
    entry: dict = {"positions": int(profile.thickness.size)}
    _with_units(entry, "thickness", profile.thickness, pixel)
    entry["extent_along"] = along
    _with_units(entry, "axis_extent", extent[extent > 0], pixel)
    entry["coverage"] = float((extent > 0).mean()) if extent.size else 0.0
    return entry, Layer(profile, extent, along)


def measure_mask(
    mask: np.ndarray,
    class_names: list[str],
    class_kinds: list[str],
    pixel: PixelSize | None = None,
    settings: MeasureSettings = MeasureSettings(),
) -> dict:
    """Every measurement of one mask of class indices as a JSON-ready dict, plus rows and profiles.

    Returns ``{"summary": ..., "particles": {class: rows}, "labels": {class: particle labels},
    "layers": {class: Layer}}``. A matrix class is measured by its area fraction only.
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
        "class_kinds": dict(zip(class_names, class_kinds, strict=True)),
        "settings": asdict(settings),
        "area_fraction": area_fractions(mask, class_names),
        "area_fraction_error": within_image_error(mask, class_names, settings.fields),
        "particles": {},
        "layers": {},
    }
    rows_by_class: dict[str, list[dict]] = {}
    labels: dict[str, np.ndarray] = {}
    layers: dict[str, Layer] = {}
    for index, (name, kind) in enumerate(zip(class_names, class_kinds, strict=True)):
        if kind == "layer":
            summary["layers"][name], layers[name] = measure_layer(mask, index, pixel)
        elif kind == "particles":
            entry, rows_by_class[name], labels[name] = measure_particles(mask, index, pixel, settings)
            summary["particles"][name] = entry
    return {"summary": summary, "particles": rows_by_class, "labels": labels, "layers": layers}


def _scaled_row(row: dict, pixel: PixelSize | None) -> dict:
    """A particle row with its area and diameter also in the pixel's unit."""
    if pixel is None:
        return row
    return row | {
        f"area_{pixel.unit}2": row["area_px"] * pixel.value**2,
        f"equivalent_diameter_{pixel.unit}": row["equivalent_diameter_px"] * pixel.value,
    }
