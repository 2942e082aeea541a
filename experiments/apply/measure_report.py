"""Files `measure` and `predict` write: per mask JSON, CSVs and pictures; per folder the summaries.

Per mask ``<stem>``: ``<stem>_measurements.json`` (everything below, and the settings used),
``<stem>_particles.csv`` (one row per particle, with ``touches_border`` and ``in_statistics``),
``<stem>_particles_<class>.png`` (each particle in its own colour, edge particles grey: a check of the
split), ``<stem>_size_<class>.png`` + ``.csv`` (size histogram with the count in each bin), and for a
layer ``<stem>_thickness.csv`` + ``<stem>_thickness_<class>.png`` (thickness at every position and the
vertical extent). Per folder: ``summary.csv``/``summary.json`` (one row per image),
``folder_summary.csv``/``.json`` (per class: mean area fraction with its 95 % t-interval over the
images, pooled particle and thickness statistics) and ``size_<class>.csv``/``.png`` (all images' particles).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from experiments.apply.measurements import Layer, PixelSize

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing the file-only backend)
from skimage.color import label2rgb  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

MAX_BINS = 40


def _unit(pixel: PixelSize | None) -> tuple[str, float]:
    return (pixel.unit, pixel.value) if pixel else ("px", 1.0)


def write_csv(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def size_bins(diameters_px: list[float], pixel: PixelSize | None) -> list[dict]:
    """Histogram of equivalent diameters: numpy's ``auto`` bin edges (at most 40 bins), count per bin."""
    values = np.asarray(diameters_px, dtype=np.float64)
    edges = np.histogram_bin_edges(values, bins="auto") if values.size else np.zeros(0)
    if edges.size > MAX_BINS + 1:
        edges = np.histogram_bin_edges(values, bins=MAX_BINS)
    counts = np.histogram(values, bins=edges)[0] if edges.size else []
    unit, factor = _unit(pixel)
    rows = []
    for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True):
        row = {"bin_low_px": float(low), "bin_high_px": float(high)}
        if pixel:
            row |= {f"bin_low_{unit}": float(low) * factor, f"bin_high_{unit}": float(high) * factor}
        rows.append(row | {"count": int(count)})
    return rows


def size_histogram(bins: list[dict], title: str, pixel: PixelSize | None, path: Path) -> None:
    """Bars of the size histogram, each labelled with its particle count."""
    unit, factor = _unit(pixel)
    low = np.array([b["bin_low_px"] for b in bins]) * factor
    width = np.array([b["bin_high_px"] for b in bins]) * factor - low
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    bars = ax.bar(
        low, [b["count"] for b in bins], width=width, align="edge", color="tab:blue", edgecolor="white"
    )
    ax.bar_label(bars, fontsize=7)
    ax.set_xlabel(f"equivalent circular diameter ({unit})")
    ax.set_ylabel("particles")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def particle_picture(labels: np.ndarray, rows: list[dict], path: Path) -> None:
    """Each particle in its own colour with its outline, particles left out of the statistics in grey.

    Written pixel for pixel (no resampling), so every cut of the split can be checked.
    """
    excluded = np.isin(labels, [r["particle"] for r in rows if not r["in_statistics"]])
    picture = label2rgb(np.where(excluded, 0, labels), bg_label=0, bg_color=(1, 1, 1))
    picture[excluded] = 0.75
    picture[find_boundaries(labels, mode="inner")] = 0.0
    Image.fromarray((picture * 255).round().astype(np.uint8)).save(path)


def thickness_plot(layer: Layer, name: str, pixel: PixelSize | None, path: Path) -> None:
    """Thickness normal to the layer along it, and the vertical extent per column, in one plot."""
    unit, factor = _unit(pixel)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    extent = layer.extent.astype(np.float64) * factor
    ax.plot(
        np.arange(extent.size) * factor,
        np.where(extent > 0, extent, np.nan),
        lw=0.8,
        color="0.6",
        label=f"vertical extent per {layer.extent_along[:-1]}",
    )
    profile = layer.profile
    for piece in np.unique(profile.piece):
        at = profile.piece == piece
        ax.plot(
            profile.position[at] * factor,
            profile.thickness[at] * factor,
            lw=0.9,
            color="tab:red",
            label="thickness normal to the layer" if piece == profile.piece[0] else None,
        )
    if profile.thickness.size:
        mean = profile.thickness.mean() * factor
        ax.axhline(mean, ls="--", color="k", lw=0.8, label=f"mean {mean:.3g} {unit}")
    ax.set_xlabel(f"position along the layer ({unit})")
    ax.set_ylabel(f"{name} thickness ({unit})")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_measurements(result: dict, out_dir: Path, stem: str, pixel: PixelSize | None) -> list[Path]:
    """Write one mask's JSON, CSVs and pictures (see the module docstring); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}_measurements.json"]
    written[0].write_text(json.dumps(result["summary"], indent=2))
    rows = [{"class": name, **row} for name, class_rows in result["particles"].items() for row in class_rows]
    if rows:
        written.append(write_csv(out_dir / f"{stem}_particles.csv", rows))
    for name, class_rows in result["particles"].items():
        if not class_rows:
            continue
        written.append(out_dir / f"{stem}_particles_{name}.png")
        particle_picture(result["labels"][name], class_rows, written[-1])
        diameters = [r["equivalent_diameter_px"] for r in class_rows if r["in_statistics"]]
        if diameters:
            bins = size_bins(diameters, pixel)
            written.append(write_csv(out_dir / f"{stem}_size_{name}.csv", bins))
            written.append(out_dir / f"{stem}_size_{name}.png")
            size_histogram(bins, f"{stem}: {name}, n={len(diameters)}", pixel, written[-1])
    if result["layers"]:
        written.append(write_csv(out_dir / f"{stem}_thickness.csv", _thickness_rows(result["layers"], pixel)))
        for name, layer in result["layers"].items():
            written.append(out_dir / f"{stem}_thickness_{name}.png")
            thickness_plot(layer, name, pixel, written[-1])
    return written


def _thickness_rows(layers: dict, pixel: PixelSize | None) -> list[dict]:
    unit, factor = _unit(pixel)
    rows = []
    for name, layer in layers.items():
        p = layer.profile
        for piece, position, row, col, thickness in zip(
            p.piece, p.position, p.rows, p.cols, p.thickness, strict=True
        ):
            entry = {
                "class": name,
                "piece": int(piece),
                "position_px": round(float(position), 2),
                "row": int(row),
                "col": int(col),
                "thickness_px": round(float(thickness), 3),
            }
            if pixel:
                entry[f"thickness_{unit}"] = float(thickness) * factor
            rows.append(entry)
    return rows


def for_summary(result: dict) -> dict:
    """What the folder summary needs of one mask's result: plain data (no label images, which are large,
    and of a layer only its thickness samples), so `predict` can keep it in each image's done mark."""
    layers = {name: layer.profile.thickness for name, layer in result["layers"].items()}
    return {key: value for key, value in result.items() if key not in ("labels", "layers")} | {
        "layers": layers
    }
