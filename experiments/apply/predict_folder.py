"""What a folder run of `predict` writes besides each image's outputs, and how it reports.

``classes.json`` (so `measure` can re-measure the masks), each image's settings for its done mark
(`callbacks.archive_writer`), then ``predictions.json``, the summaries and the printed report. The
single-process loop (`experiments.apply.predict`) and the multi-device one
(`experiments.apply.predict_archive`) both finish here, so their folders are alike file for file.
"""

from __future__ import annotations

import argparse
import json
import sys

from experiments.apply.folder_report import report_lines, write_summary
from experiments.apply.imageio import default_colors
from experiments.apply.mask_classes import CLASSES_FILE
from experiments.apply.measure import folder_pixel_size
from experiments.apply.records import calibration_of, write_predictions
from lightning_modules.checkpoint import SegmenterMeta

#: options that change how a run goes, not what it writes: a resumed run may change them
RUN_OPTIONS = frozenset(
    {
        "input",
        "output",
        "overwrite",
        "resume",
        "batch_size",
        "device",
        "devices",
        "num_nodes",
        "accelerator",
        "quiet",
    }
)


def run_settings(args: argparse.Namespace) -> dict[str, str]:
    """The options that decide an image's outputs (checkpoint, windows, preprocessing, measurements)."""
    return {key: str(value) for key, value in sorted(vars(args).items()) if key not in RUN_OPTIONS}


def write_classes(args: argparse.Namespace, meta: SegmenterMeta, declared: list[str] | None) -> None:
    """``classes.json`` (names, colours, kinds, checkpoint), after warning if the kinds are assumed."""
    if not declared and args.layer_classes is None and not args.no_measure:
        print(
            "warning: the checkpoint declares no class kinds (written before they were stored); measuring "
            "class 0 as the matrix and the others as particles; --layer-classes NAME measures a layer",
            file=sys.stderr,
        )
    classes = {
        "class_names": meta.class_names,
        "class_colors": meta.class_colors or default_colors(meta.num_classes),
        "class_kinds": meta.class_kinds,
        "checkpoint": str(args.ckpt),
    }
    (args.output / CLASSES_FILE).write_text(json.dumps(classes, indent=2))


def report_folder(
    args: argparse.Namespace,
    meta: SegmenterMeta,
    total: int,
    records: dict[str, dict],
    summaries: dict[str, dict],
    failures: list[str],
) -> int:
    """Write ``predictions.json`` and the summaries, print the report; the exit status (1: some failed)."""
    header = {
        "checkpoint": str(args.ckpt),
        "intensity": args.scale or meta.intensity,
        "training": {"scale": meta.scale, "pixel_size_nm": meta.pixel_size_nm},
    }
    write_predictions(args.output, header, records)
    pixel = folder_pixel_size([calibration_of(records[name]) for name in summaries])
    rows = write_summary(summaries, args.output, pixel)
    print(f"segmented {total - len(failures)}/{total} image(s) into {args.output}")
    if rows:
        print("\n".join(report_lines(rows, pixel)))
    for message in failures:
        print(f"FAILED {message}", file=sys.stderr)
    return 1 if failures else 0
