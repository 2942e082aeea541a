"""The folder's summaries: one row per image, and per class the numbers to publish with their error bars.

``summary.csv``/``summary.json``: one row (object) per image. ``folder_summary.csv``/``.json``: per
class, the area fraction as the mean over the images with its 95 % Student-t interval
(`experiments.apply.uncertainty.t_interval`, clipped to 0-1; none for a single image), and the
particles of all images pooled (count, number density, size statistics) or a layer's thickness over all
its positions. ``size_<class>.csv``/``.png``: the pooled size histogram.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from experiments.apply.measure_report import size_bins, size_histogram, write_csv
from experiments.apply.measurements import PixelSize, summarise
from experiments.apply.uncertainty import number_density, t_interval

STATS = ("mean", "std", "min", "max", "median")


def _units(summary: dict) -> list[str]:
    return ["px"] + ([summary["pixel_size"]["unit"]] if summary["pixel_size"] else [])


def image_row(stem: str, summary: dict) -> dict:
    """One image's line of summary.csv: fractions (± within-image 95 %), counts, sizes, thicknesses."""
    row: dict = {"image": stem}
    if "mean_uncertainty" in summary:  # written by predict, not by `measure` of a mask alone
        row["mean_uncertainty"] = round(summary["mean_uncertainty"], 6)
    for name, fraction in summary["area_fraction"].items():
        row[f"fraction_{name}"] = round(fraction, 6)
        half = summary["area_fraction_error"][name]["half_width"]
        row[f"fraction_halfwidth95_{name}"] = None if half is None else round(half, 6)
    for name, entry in summary["particles"].items():
        row[f"count_{name}"] = entry["count"]
        row[f"count_in_statistics_{name}"] = entry["count_in_statistics"]
        for unit in _units(summary):
            row[f"number_density_per_{unit}2_{name}"] = entry[f"number_density_per_{unit}2"]
            row[f"mean_diameter_{unit}_{name}"] = round(entry[f"equivalent_diameter_{unit}"]["mean"], 4)
    for name, entry in summary["layers"].items():
        for unit in _units(summary):
            row[f"mean_thickness_{unit}_{name}"] = round(entry[f"thickness_{unit}"]["mean"], 4)
            row[f"std_thickness_{unit}_{name}"] = round(entry[f"thickness_{unit}"]["std"], 4)
            row[f"mean_axis_extent_{unit}_{name}"] = round(entry[f"axis_extent_{unit}"]["mean"], 4)
    return row


def class_rows(results: dict[str, dict], pixel: PixelSize | None) -> list[dict]:
    """Per class over all images: fraction mean with its t-interval, pooled particles or thickness."""
    first = next(iter(results.values()))["summary"]
    factor = pixel.value if pixel else 1.0
    rows = []
    for name, kind in first["class_kinds"].items():
        fractions = [r["summary"]["area_fraction"][name] for r in results.values()]
        interval = t_interval(fractions)
        low, high = interval["ci_low"], interval["ci_high"]
        row: dict = {
            "class": name,
            "kind": kind,
            "images": interval["n"],
            "fraction_mean": interval["mean"],
            "fraction_std": interval["std"],
            "fraction_ci95_low": None if low is None else max(low, 0.0),
            "fraction_ci95_high": None if high is None else min(high, 1.0),
        }
        # images measured by area only (predict's huge ones) have no particles or layers to pool
        measured = [r for r in results.values() if name in r["particles"] or name in r["layers"]]
        if kind == "particles":
            particles = [p for r in measured for p in r["particles"][name]]
            cut = sum(p["touches_border"] for p in particles)
            area = sum(r["summary"]["height_px"] * r["summary"]["width_px"] for r in measured)
            used = [p["equivalent_diameter_px"] for p in particles if p["in_statistics"]]
            row |= {
                "count": len(particles),
                "count_in_statistics": len(used),
                "number_density_per_px2": number_density(len(particles) - cut, cut, area),
            }
            row |= _scaled("diameter", summarise(used), pixel)
            if pixel:
                row[f"number_density_per_{pixel.unit}2"] = row["number_density_per_px2"] / factor**2
        elif kind == "layer":
            thickness = np.concatenate(
                [np.asarray(r["layers"][name], float) for r in measured] or [np.zeros(0)]
            )
            row |= {"positions": int(thickness.size)} | _scaled("thickness", summarise(thickness), pixel)
        rows.append(row)
    return rows


def _scaled(key: str, stats: dict, pixel: PixelSize | None) -> dict:
    out = {f"{key}_{stat}_px": stats[stat] for stat in STATS}
    if pixel:
        out |= {f"{key}_{stat}_{pixel.unit}": stats[stat] * pixel.value for stat in STATS}
    return out


def write_summary(results: dict[str, dict], out_dir: Path, pixel: PixelSize | None) -> list[dict]:
    """Write the folder's summaries and pooled histograms; returns the per-class rows (for the report)."""
    if not results:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "summary.csv", [image_row(stem, r["summary"]) for stem, r in results.items()])
    (out_dir / "summary.json").write_text(json.dumps({s: r["summary"] for s, r in results.items()}, indent=2))
    rows = class_rows(results, pixel)
    write_csv(out_dir / "folder_summary.csv", rows)
    (out_dir / "folder_summary.json").write_text(json.dumps(rows, indent=2))
    for row in rows:
        if row["kind"] != "particles":
            continue
        name = row["class"]
        used = [
            p["equivalent_diameter_px"]
            for r in results.values()
            for p in r["particles"].get(name, [])
            if p["in_statistics"]
        ]
        if used:
            bins = size_bins(used, pixel)
            write_csv(out_dir / f"size_{name}.csv", bins)
            size_histogram(
                bins,
                f"{name}: {len(used)} particles in {len(results)} image(s)",
                pixel,
                out_dir / f"size_{name}.png",
            )
    return rows


def report_lines(rows: list[dict], pixel: PixelSize | None) -> list[str]:
    """A few readable lines for the terminal: fraction ± interval, counts, sizes or thickness."""
    unit = pixel.unit if pixel else "px"
    lines = []
    for row in rows:
        text = f"  {row['class']} ({row['kind']}): area fraction {row['fraction_mean']:.4f}"
        if row["fraction_ci95_low"] is not None:
            text += f" (95% CI {row['fraction_ci95_low']:.4f}-{row['fraction_ci95_high']:.4f}, {row['images']} images)"
        if row["kind"] == "particles":
            text += (
                f"; {row['count']} particles, {row['count_in_statistics']} in the statistics, "
                f"mean diameter {row[f'diameter_mean_{unit}']:.3g} {unit}"
            )
        elif row["kind"] == "layer":
            text += (
                f"; thickness {row[f'thickness_mean_{unit}']:.3g} ± {row[f'thickness_std_{unit}']:.2g} {unit}"
            )
        lines.append(text)
    return lines
