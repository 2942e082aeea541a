"""`python -m experiments measure --masks DIR [--pixel-size 4.2nm]`: numbers and pictures from masks.

Masks are single-channel PNG/TIFF files (``*_mask.*`` as `predict` writes them, else every PNG/TIFF in
the folder). Their pixel values are mapped to classes as `experiments.apply.mask_classes` says
(``--class-values 0=matrix 255=pore``, ``--class-names``, the ``classes.json`` `predict` wrote, or the
values found), each class is measured by its kind (``--layer-classes`` overrides), and the files of
`experiments.apply.measure_report` and `experiments.apply.folder_report` are written into the output
folder (default: the masks folder). `predict` measures its masks with the same options.
A bad file does not stop a folder run: failures are listed at the end and the exit status is 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datamodules.pixel_size import Calibration, PixelSize, parse_pixel_size
from experiments.apply.folder_report import report_lines, write_summary
from experiments.apply.imageio import read_index_mask
from experiments.apply.mask_classes import MaskError, class_table
from experiments.apply.measure_report import for_summary, write_measurements
from experiments.apply.measurements import MeasureSettings, measure_mask
from experiments.apply.particles import SPLIT_DEPTH, SPLIT_MIN_AREA
from experiments.apply.records import describe_calibrations, mask_calibration, recorded_calibrations
from experiments.apply.uncertainty import FIELDS

MASK_SUFFIXES = (".png", ".tif", ".tiff")
#: pictures `measure` and `predict` write next to the masks: never read back as masks
OUTPUTS = ("*_overlay.png", "*_size_*.png", "*_particles_*.png", "*_thickness_*.png", "size_*.png")


def add_measure_options(parser: argparse.ArgumentParser) -> None:
    """The options of how classes are measured, shared by `measure` and `predict`."""
    group = parser.add_argument_group("measurements (docs/measurements.md)")
    group.add_argument(
        "--layer-classes",
        nargs="*",
        metavar="CLASS",
        help="measure exactly these classes by thickness (default: the kinds the data/checkpoint declare)",
    )
    group.add_argument("--no-split", action="store_true", help="keep touching particles as one particle")
    group.add_argument(
        "--split-depth",
        type=float,
        default=SPLIT_DEPTH,
        metavar="PX",
        help=f"split where the distance map dips at least this much between two maxima (default {SPLIT_DEPTH})",
    )
    group.add_argument(
        "--split-min-area",
        type=int,
        default=SPLIT_MIN_AREA,
        metavar="PX",
        help=f"smaller split pieces stay merged with their neighbour (default {SPLIT_MIN_AREA})",
    )
    group.add_argument(
        "--include-edge-particles",
        action="store_true",
        help="use particles cut by the image edge in the size and shape statistics too",
    )
    group.add_argument(
        "--fields",
        type=int,
        default=FIELDS,
        metavar="K",
        help=f"K x K fields per image for the area-fraction error (default {FIELDS})",
    )


def settings_from(args: argparse.Namespace) -> MeasureSettings:
    """`MeasureSettings` from the parsed options of `add_measure_options` (bad values: ValueError)."""
    if args.split_depth <= 0 or args.split_min_area < 1 or args.fields < 1:
        raise ValueError("--split-depth must be > 0 and --split-min-area and --fields at least 1")
    return MeasureSettings(
        split=not args.no_split,
        split_depth=args.split_depth,
        split_min_area=args.split_min_area,
        include_edge_particles=args.include_edge_particles,
        fields=args.fields,
    )


def folder_pixel_size(calibrations: list[Calibration | None]) -> PixelSize | None:
    """The pixel size of the folder's statistics: the one every mask shares (within 1 %), else None.

    Pooled particle sizes in physical units need one pixel size; masks of different resolutions are
    summarised in pixels (each image's own files keep its physical units), and that is said once.
    """
    sizes = [c.size if c else None for c in calibrations]
    if not sizes or None in sizes:
        return None
    low, high = min(s.nm for s in sizes), max(s.nm for s in sizes)
    if high > 1.01 * low:
        print(f"note: the masks' pixel sizes differ ({low:g}-{high:g} nm); the folder summary is in px")
        return None
    return sizes[0]


def find_masks(folder: Path) -> list[Path]:
    """The mask file itself, or a folder's ``*_mask.*`` files as written by `predict`; otherwise every
    PNG/TIFF in the folder that is not one of our pictures."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"mask folder {folder} does not exist; pass a folder of masks or one mask file"
        )
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in MASK_SUFFIXES and not any(fnmatch.fnmatch(p.name, o) for o in OUTPUTS)
    )
    named = [p for p in files if p.stem.endswith("_mask")]
    if not (named or files):
        raise FileNotFoundError(f"no masks ({', '.join(MASK_SUFFIXES)}) in {folder}")
    return named or files


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """``a_mask.png`` -> ``a``; masks that would share a stem (``a.png``, ``a.tif``) keep their extension."""
    stems = {p: p.stem.removesuffix("_mask") for p in paths}
    counts = Counter(stems.values())
    return {p: s if counts[s] == 1 else f"{s}_{p.suffix.lstrip('.').lower()}" for p, s in stems.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments measure", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--masks", required=True, type=Path, help="folder of masks (e.g. predict's output), or one mask"
    )
    parser.add_argument("--output", type=Path, help="where to write (default: the masks' folder)")
    parser.add_argument(
        "--pixel-size",
        help="side of one pixel with its unit, e.g. 4.2nm, 0.5um, 1.3µm (default: what predict recorded "
        "in predictions.json, else the mask file's own metadata)",
    )
    parser.add_argument(
        "--class-values",
        nargs="+",
        metavar="VALUE=NAME",
        help="pixel value of each class, the matrix/background first: --class-values 0=matrix 255=pore",
    )
    parser.add_argument("--class-names", nargs="+", help="one name per class for masks holding 0, 1, 2, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_measure_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    failures: dict[Path, str] = {}

    def values_found() -> dict[Path, np.ndarray]:
        found = {}
        for path in paths:
            try:
                found[path] = np.unique(read_index_mask(path))
            except ValueError as err:
                failures[path] = str(err)
        return found

    try:
        given = parse_pixel_size(args.pixel_size)
        settings = settings_from(args)
        paths = find_masks(args.masks)
        folder = args.masks if args.masks.is_dir() else args.masks.parent
        table, source = class_table(
            folder, values_found, args.class_values, args.class_names, args.layer_classes
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = args.output or folder
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(
            f"error: cannot write into {out_dir} ({err.strerror or err}); choose a folder with --output",
            file=sys.stderr,
        )
        return 2
    print(source)
    results, calibrations = {}, {}
    recorded = recorded_calibrations(folder)
    stems = output_stems(paths)
    for path in tqdm(paths, desc="masks", unit="mask", disable=args.quiet or len(paths) == 1):
        if path in failures:
            continue
        try:
            mask = table.indices(read_index_mask(path), path)
            calibrations[path] = mask_calibration(path, stems[path], given, recorded)
            pixel = calibrations[path].size if calibrations[path] else None
            result = measure_mask(mask, table.names, table.kinds, pixel, settings)
        except (ValueError, MaskError) as err:
            failures[path] = str(err)
            continue
        write_measurements(result, out_dir, stems[path], pixel)
        results[stems[path]] = for_summary(result)
    pixel = folder_pixel_size(list(calibrations.values()))
    rows = write_summary(results, out_dir, pixel)
    print(f"measured {len(results)} mask(s) into {out_dir}")
    for line in describe_calibrations({stems[p]: c for p, c in calibrations.items()}):
        print(f"  {line}")
    print("\n".join(report_lines(rows, pixel)))
    for path, message in failures.items():
        print(f"FAILED {path}: {message}", file=sys.stderr)
    return 1 if failures else 0
