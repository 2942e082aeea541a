"""`python -m experiments predict --ckpt CKPT --input FILE_OR_DIR --output DIR`: segment real micrographs.

The checkpoint carries the network, class names, colours and normalisation, so nothing else is needed.
Images of any size go through overlapping windows (`lightning_modules.inference`). Per image ``<stem>``
(``<stem>_<ext>`` where two inputs share a stem, so none overwrites another) the output folder gets ``<stem>_mask.png`` (pixel value = class index), ``<stem>_overlay.png`` (class
colours over the image, with a legend) and the measurements of `experiments.apply.measure`; the folder
gets ``classes.json`` (so `measure` can be re-run on the masks) and ``summary.csv``/``summary.json``.
A bad file does not stop a folder run: failures are listed at the end and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from experiments.apply.folder_report import report_lines, write_summary
from experiments.apply.imageio import (
    SCALES,
    default_colors,
    list_images,
    overlay,
    read_micrograph,
    write_index_mask,
)
from experiments.apply.mask_classes import CLASSES_FILE, measured_kinds
from experiments.apply.measure import add_measure_options, settings_from
from experiments.apply.measure_report import for_summary, write_measurements
from experiments.apply.measurements import PixelSize, measure_mask, parse_pixel_size
from lightning_modules.checkpoint import SegmenterMeta, load_segmenter
from lightning_modules.inference import normalise, sliding_window_logits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments predict", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="segmentation checkpoint written by `fit`")
    parser.add_argument("--input", required=True, type=Path, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, type=Path, help="folder for masks, overlays, measurements")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)")
    parser.add_argument(
        "--tile", type=int, default=512, help="window side in pixels (the training crop size)"
    )
    parser.add_argument(
        "--overlap", type=float, default=0.25, help="fraction of a window shared with neighbours"
    )
    parser.add_argument("--pixel-size", help="side of one pixel with its unit, e.g. 4.2nm, 0.5um, 1.3µm")
    parser.add_argument(
        "--scale", choices=SCALES, default="percentile", help="16-bit/float intensity scaling"
    )
    parser.add_argument("--no-measure", action="store_true", help="write masks and overlays only")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_measure_options(parser)
    return parser


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an unavailable CUDA request is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def output_names(files: list[Path]) -> dict[Path, str]:
    """Each input's output name: its stem, or ``<stem>_<ext>`` where inputs share a stem (``a.png``, ``a.tif``).

    Without this, the second image's mask, overlay and measurements would overwrite the first's.
    """
    stems = Counter(path.stem for path in files)
    return {p: p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}" for p in files}


def predict_file(
    net: torch.nn.Module,
    meta: SegmenterMeta,
    path: Path,
    stem: str,
    args: argparse.Namespace,
    device: torch.device,
    pixel: PixelSize | None,
) -> dict | None:
    """Segment one image and write its outputs; returns its measurements (None with --no-measure)."""
    image = read_micrograph(path, scale=args.scale)
    logits = sliding_window_logits(
        net,
        normalise(image, meta.mean, meta.std),
        meta.num_classes,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=device,
        progress=not args.quiet,
    )
    mask = logits.argmax(0).numpy()
    write_index_mask(mask, args.output / f"{stem}_mask.png")
    colors = meta.class_colors or default_colors(meta.num_classes)
    overlay(image, mask, meta.class_names, colors).save(args.output / f"{stem}_overlay.png")
    if args.no_measure:
        return None
    result = measure_mask(mask, meta.class_names, meta.class_kinds, pixel, settings_from(args))
    write_measurements(result, args.output, stem, pixel)
    return for_summary(result)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pixel = parse_pixel_size(args.pixel_size)
        settings_from(args)  # bad measurement options fail before any image is segmented
        device = resolve_device(args.device)
        files = list_images(args.input)
        net, meta = load_segmenter(args.ckpt, map_location="cpu")
        declared = meta.class_kinds
        meta = replace(meta, class_kinds=measured_kinds(meta.class_names, declared, args.layer_classes))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net.to(device)
    args.output.mkdir(parents=True, exist_ok=True)
    colors = meta.class_colors or default_colors(meta.num_classes)
    if not declared and args.layer_classes is None and not args.no_measure:
        print(
            "warning: the checkpoint declares no class kinds (written before they were stored); measuring "
            "class 0 as the matrix and the others as particles; --layer-classes NAME measures a layer",
            file=sys.stderr,
        )
    classes = {
        "class_names": meta.class_names,
        "class_colors": colors,
        "class_kinds": meta.class_kinds,
        "checkpoint": str(args.ckpt),
    }
    (args.output / CLASSES_FILE).write_text(json.dumps(classes, indent=2))

    summaries, failures = {}, {}
    names = output_names(files)
    for path in tqdm(files, desc="images", unit="img", disable=args.quiet or len(files) == 1):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                summary = predict_file(net, meta, path, names[path], args, device, pixel)
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
        except Exception as err:  # one bad file must not stop a folder run; it is reported below
            failures[path] = f"{type(err).__name__}: {err}"
            continue
        if summary is not None:
            summaries[names[path]] = summary
    rows = write_summary(summaries, args.output, pixel)
    print(f"segmented {len(files) - len(failures)}/{len(files)} image(s) into {args.output}")
    print("\n".join(report_lines(rows, pixel)))
    for path, message in failures.items():
        print(f"FAILED {path}: {message}", file=sys.stderr)
    return 1 if failures else 0
