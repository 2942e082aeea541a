"""`python -m experiments measure --masks DIR [--pixel-size 4.2nm]`: numbers and plots from index masks.

Also called by `predict` for every image it segments. Per mask ``<stem>``, writes into the output folder:
``<stem>_measurements.json`` (area fractions, particle and layer statistics), ``<stem>_particles.csv``
(one row per particle), ``<stem>_size_<class>.png`` (size histograms), and for a layer class
``<stem>_thickness.csv`` + ``<stem>_thickness_<class>.png``; for the whole folder ``summary.csv``
and ``summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

from datamodules.pixel_size import PixelSize, parse_pixel_size
from experiments.apply.imageio import read_index_mask
from experiments.apply.measurements import LAYER_CLASSES, measure_mask
from experiments.apply.records import describe_calibrations, mask_calibration, recorded_calibrations

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing the file-only backend)

CLASSES_FILE = "classes.json"
MASK_SUFFIXES = (".png", ".tif", ".tiff")


def _length_label(pixel: PixelSize | None) -> tuple[str, float]:
    return (pixel.unit, pixel.value) if pixel else ("px", 1.0)


def _histogram(rows: list[dict], name: str, pixel: PixelSize | None, path: Path) -> None:
    unit, factor = _length_label(pixel)
    diameters = np.array([r["equivalent_diameter_px"] for r in rows]) * factor
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.hist(diameters, bins=max(5, min(40, len(diameters) // 3)), color="tab:blue", edgecolor="white")
    ax.set_xlabel(f"equivalent circular diameter ({unit})")
    ax.set_ylabel("particles")
    ax.set_title(f"{name}: n={len(rows)}, mean {diameters.mean():.3g} {unit}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _profile_plot(profile: np.ndarray, name: str, along: str, pixel: PixelSize | None, path: Path) -> None:
    unit, factor = _length_label(pixel)
    thickness = profile * factor
    present = thickness[profile > 0]
    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    ax.plot(np.arange(profile.size) * factor, thickness, lw=0.8, color="tab:red")
    if present.size:
        ax.axhline(present.mean(), ls="--", color="k", lw=0.8, label=f"mean {present.mean():.3g} {unit}")
        ax.legend(loc="upper right")
    ax.set_xlabel(f"position along the layer, {along} ({unit})")
    ax.set_ylabel(f"{name} thickness ({unit})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_measurements(result: dict, out_dir: Path, stem: str, pixel: PixelSize | None) -> list[Path]:
    """Write one mask's JSON, CSVs and plots (see the module docstring); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}_measurements.json"]
    written[0].write_text(json.dumps(result["summary"], indent=2))
    rows = [{"class": name, **row} for name, class_rows in result["particles"].items() for row in class_rows]
    if result["particles"]:
        path = out_dir / f"{stem}_particles.csv"
        fields = list(rows[0]) if rows else ["class", "particle"]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    for name, class_rows in result["particles"].items():
        if class_rows:
            written.append(out_dir / f"{stem}_size_{name}.png")
            _histogram(class_rows, name, pixel, written[-1])
    if result["thickness"]:
        path = out_dir / f"{stem}_thickness.csv"
        unit, factor = _length_label(pixel)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "position_px", "thickness_px", f"thickness_{unit}"])
            for name, profile in result["thickness"].items():
                writer.writerows([name, i, int(t), float(t) * factor] for i, t in enumerate(profile))
        written.append(path)
        for name, profile in result["thickness"].items():
            along = result["summary"]["layers"][name]["along"]
            written.append(out_dir / f"{stem}_thickness_{name}.png")
            _profile_plot(profile, name, along, pixel, written[-1])
    return written


def _summary_row(stem: str, summary: dict) -> dict:
    units = ["px"] + ([summary["pixel_size"]["unit"]] if summary["pixel_size"] else [])
    row: dict = {"image": stem}
    row.update({f"fraction_{k}": round(v, 6) for k, v in summary["area_fraction"].items()})
    for name, entry in summary["particles"].items():
        row[f"count_{name}"] = entry["count"]
        for unit in units:
            row[f"mean_diameter_{unit}_{name}"] = round(entry[f"equivalent_diameter_{unit}"]["mean"], 4)
    for name, entry in summary["layers"].items():
        for unit in units:
            row[f"mean_thickness_{unit}_{name}"] = round(entry[f"thickness_{unit}"]["mean"], 4)
            row[f"std_thickness_{unit}_{name}"] = round(entry[f"thickness_{unit}"]["std"], 4)
    return row


def write_summary(summaries: dict[str, dict], out_dir: Path) -> None:
    """One row per image (fractions, counts, mean sizes, mean thickness) in summary.csv + summary.json."""
    if not summaries:
        return
    rows = [_summary_row(stem, s) for stem, s in summaries.items()]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with (out_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "summary.json").write_text(json.dumps(summaries, indent=2))


def find_masks(folder: Path) -> list[Path]:
    """``*_mask.*`` files as written by `predict`; otherwise every PNG/TIFF in the folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"mask folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
    named = [p for p in files if p.stem.endswith("_mask")]
    if not (named or files):
        raise FileNotFoundError(f"no masks ({', '.join(MASK_SUFFIXES)}) in {folder}")
    return named or files


def class_names_for(folder: Path, given: list[str] | None, masks: list[np.ndarray]) -> list[str]:
    """--class-names, else the classes.json `predict` wrote beside the masks, else class_0..class_N."""
    if given:
        return list(given)
    if (folder / CLASSES_FILE).is_file():
        return list(json.loads((folder / CLASSES_FILE).read_text())["class_names"])
    top = max((int(m.max()) for m in masks if m.size), default=0)
    return [f"class_{i}" for i in range(top + 1)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments measure", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--masks", required=True, type=Path, help="folder of index masks (e.g. predict's output)"
    )
    parser.add_argument("--output", type=Path, help="where to write (default: the masks folder)")
    parser.add_argument(
        "--pixel-size",
        help="side of one pixel with its unit, e.g. 4.2nm, 0.5um, 1.3µm (default: what predict recorded "
        "in predictions.json, else the mask file's own metadata)",
    )
    parser.add_argument("--class-names", nargs="+", help="one name per class index (default: classes.json)")
    parser.add_argument(
        "--layer-classes", nargs="*", default=list(LAYER_CLASSES), help="classes measured by thickness"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        given = parse_pixel_size(args.pixel_size)
        paths = find_masks(args.masks)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = args.output or args.masks
    masks, failures = {}, {}
    for path in paths:
        try:
            masks[path] = read_index_mask(path)
        except ValueError as err:
            failures[path] = str(err)
    names = class_names_for(args.masks, args.class_names, list(masks.values()))
    summaries, recorded, calibrations = {}, recorded_calibrations(args.masks), {}
    for path, mask in masks.items():
        stem = path.stem.removesuffix("_mask")
        calibrations[stem] = mask_calibration(path, stem, given, recorded)
        pixel = calibrations[stem].size if calibrations[stem] else None
        try:
            result = measure_mask(mask, names, pixel, tuple(args.layer_classes))
        except ValueError as err:
            failures[path] = str(err)
            continue
        write_measurements(result, out_dir, stem, pixel)
        summaries[stem] = result["summary"]
    write_summary(summaries, out_dir)
    print(f"measured {len(summaries)} mask(s) into {out_dir}")
    for line in describe_calibrations(calibrations):
        print(f"  {line}")
    for path, message in failures.items():
        print(f"FAILED {path}: {message}", file=sys.stderr)
    return 1 if failures else 0
