"""`python -m experiments predict --ckpt CKPT --input FILE_OR_DIR --output DIR`: segment real micrographs.

The checkpoint carries the network, class names, colours, normalisation and how its training images
were prepared, so nothing else is needed and every input is prepared as training prepared its images:
read by the same reader with the same intensity rule, then resampled to the resolution the network
was trained at (by the file's pixel size when both it and the checkpoint know one, else by the
training ``scale``). Images of any size go through the tiled engine (`lightning_modules.inference`:
overlapping windows, batched and blended on the device, strip by strip); the logits are resampled back
to the input's grid before the argmax, so masks match the input pixel for pixel. Per image ``<stem>``
(``<stem>_<ext>`` where two inputs share a stem, so none overwrites another) the output folder gets
``<stem>_mask.png`` (pixel value = class index), ``<stem>_overlay.png`` (class colours over the image,
with a legend), ``<stem>_uncertainty.png`` and ``<stem>_uncertainty.tif`` (the normalised softmax
entropy per pixel, 0 = certain, 1 = all classes equally likely, as a picture and as float32; ``--tta``
averages the logits of four flips of each window) and the measurements of `experiments.apply.measure`;
TIFFs above 4096x4096 px are read and segmented in strips with bounded memory (`experiments.apply.predict_strips`:
above 8192x8192 px the mask is ``<stem>_mask.tif`` and only area fractions are measured). The folder gets
``classes.json`` (so `measure` can be re-run on the masks), ``predictions.json`` (what was
done to each image, with its pixel size) and ``summary.csv``/``summary.json``. Outputs of an earlier
run are never replaced without ``--overwrite``. A bad file does not stop a folder run: failures are
listed at the end and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from callbacks.archive_writer import write_marker
from datamodules.intensity import INTENSITY_RULES
from datamodules.io import IMAGE_SUFFIXES, list_images
from datamodules.pixel_size import Calibration, parse_pixel_size
from experiments.apply.imageio import default_colors, overlay, write_index_mask, write_uncertainty
from experiments.apply.mask_classes import CLASSES_FILE, measured_kinds
from experiments.apply.measure import add_measure_options, settings_from
from experiments.apply.predict_folder import report_folder, run_settings, write_classes
from experiments.apply.predict_strips import engine_options, measured, predict_in_strips
from experiments.apply.preprocess import Prepared, parse_resample, prepare
from experiments.apply.records import PREDICTIONS_FILE, image_entry
from experiments.apply.strips import read_in_strips
from lightning_modules.checkpoint import SegmenterMeta, load_segmenter
from lightning_modules.inference import segment

#: files of one image's outputs that an earlier run may have left (the measurement files start the same)
OUTPUT_SUFFIXES = (
    "_mask.png",
    "_mask.tif",
    "_overlay.png",
    "_uncertainty.png",
    "_uncertainty.tif",
    "_measurements.json",
)
FOLDER_OUTPUTS = (CLASSES_FILE, PREDICTIONS_FILE, "summary.csv", "summary.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments predict", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="segmentation checkpoint written by `fit`")
    parser.add_argument("--input", required=True, type=Path, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, type=Path, help="folder for masks, overlays, measurements")
    rerun = parser.add_mutually_exclusive_group()
    rerun.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    rerun.add_argument(
        "--resume", action="store_true", help="keep the images an earlier run finished, predict the rest"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)")
    parser.add_argument(
        "--tile", type=int, default=512, help="window side in network pixels (the training crop size)"
    )
    parser.add_argument(
        "--overlap", type=float, default=0.25, help="fraction of a window shared with neighbours"
    )
    parser.add_argument(
        "--pixel-size",
        help="side of one pixel with its unit, e.g. 4.2nm, 0.5um, 1.3µm (default: from each file's metadata)",
    )
    parser.add_argument(
        "--resample",
        default="auto",
        help="auto (to the training resolution, the default), none, or a factor such as 0.5",
    )
    parser.add_argument(
        "--scale",
        choices=INTENSITY_RULES,
        help="16-bit/float intensity rule (default: the checkpoint's, the one training used)",
    )
    parser.add_argument("--devices", type=int, default=1, help="processes per node (DDP; 1: this process)")
    parser.add_argument(
        "--num-nodes", type=int, default=1, help="nodes of a multi-node run (SLURM, torchrun)"
    )
    parser.add_argument("--accelerator", default="auto", help="with --devices/--resume: cpu, gpu or auto")
    parser.add_argument(
        "--tta", action="store_true", help="average the logits of 4 flips of each window (4x slower)"
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


def input_files(path: Path) -> list[Path]:
    """The image files to process: the file itself, or the images directly inside a folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input {path} does not exist; pass an image file or a folder of images")
    files = [p for p in list_images(path) if p.is_file()]
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    return files


def output_names(files: list[Path]) -> dict[Path, str]:
    """Each input's output name: its stem, or ``<stem>_<ext>`` where inputs share a stem (``a.png``, ``a.tif``).

    Without this, the second image's mask, overlay and measurements would overwrite the first's.
    """
    stems = Counter(path.stem for path in files)
    return {p: p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}" for p in files}


def check_output_folder(out: Path, stems: list[str], overwrite: bool) -> None:
    """Raise ValueError unless ``out`` is a writable folder holding no outputs this run would replace."""
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"--output {out} is a file; give a folder (it will hold masks, overlays, measurements)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(
            f"cannot write into {out} ({err.strerror}); choose another --output or fix its permissions"
        ) from err
    planned = [*FOLDER_OUTPUTS, *(f"{stem}{suffix}" for stem in stems for suffix in OUTPUT_SUFFIXES)]
    existing = [name for name in planned if (out / name).exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise ValueError(
            f"{out} holds outputs of an earlier predict run ({shown}); choose another --output "
            "or pass --overwrite to replace them (or --resume to keep the finished images)"
        )


def describe(path: Path, prepared: Prepared) -> str:
    """One report line: the image, its pixel size and source, and the resampling applied."""
    height, width = prepared.image.shape[:2]
    cal = prepared.calibration
    pixel = f"pixel {cal.size} ({cal.source})" if cal else "no pixel size"
    net_h, net_w = prepared.tensor.shape[1:]
    if (net_h, net_w) == (height, width):
        done = f"not resampled ({prepared.basis})"
    else:
        done = f"resampled x{prepared.factor:.4g} to {net_w}x{net_h} px ({prepared.basis}) and back"
    return f"{path.name}: {width}x{height} px, {pixel}; {done}"


def predict_file(
    net: torch.nn.Module,
    meta: SegmenterMeta,
    path: Path,
    stem: str,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[dict, dict | None]:
    """Segment one image and write its outputs; returns its record and its measurement summary."""
    pixel = parse_pixel_size(args.pixel_size)
    given = Calibration(pixel, "--pixel-size") if pixel else None
    if read_in_strips(path):
        return predict_in_strips(net, meta, path, stem, args, device, given)
    prepared = prepare(path, meta, args.scale or meta.intensity, given, parse_resample(args.resample))
    mask, uncertainty = segment(
        net, prepared.tensor, meta.num_classes, prepared.image.shape[:2], **engine_options(args, device)
    )
    write_index_mask(mask, args.output / f"{stem}_mask.png")
    colors = meta.class_colors or default_colors(meta.num_classes)
    overlay(prepared.image, mask, meta.class_names, colors).save(args.output / f"{stem}_overlay.png")
    write_uncertainty(uncertainty, args.output, stem)
    tqdm.write(describe(path, prepared), file=sys.stdout)
    record = image_entry(
        prepared.calibration,
        input=str(path),
        size_px=[prepared.image.shape[1], prepared.image.shape[0]],
        network_input_px=[prepared.tensor.shape[2], prepared.tensor.shape[1]],
        resample_factor=prepared.factor,
        resample_basis=prepared.basis,
        mean_uncertainty=float(uncertainty.mean(dtype=np.float64)),
    )
    if args.no_measure:
        return record, None
    return record, measured(mask, meta, args, stem, record, prepared.calibration)


def _failure(path: Path, err: Exception) -> str:
    """One line naming the file: our errors already start with it; others get its name and their type."""
    message = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
    return message if message.startswith(str(path)) else f"{path}: {message}"


def _intensity_warning(args: argparse.Namespace, meta: SegmenterMeta) -> None:
    if args.scale and args.scale != meta.intensity:
        print(
            f"warning: --scale {args.scale} overrides the intensity rule {meta.intensity!r} that the "
            "training images were read with; the network sees other inputs than in training",
            file=sys.stderr,
        )


def predict_one(
    net: torch.nn.Module,
    meta: SegmenterMeta,
    path: Path,
    stem: str,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[dict | None, dict | None, str | None]:
    """`predict_file` with its warnings printed as lines; a failure is returned as its line, not raised."""
    record = summary = failure = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            record, summary = predict_file(net, meta, path, stem, args, device)
        except Exception as err:  # one bad file must not stop a folder run; it is reported at the end
            failure = _failure(path, err)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return record, summary, failure


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parse_pixel_size(args.pixel_size)
        parse_resample(args.resample)
        settings_from(args)  # bad measurement options fail before any image is segmented
        device = resolve_device(args.device)
        files = input_files(args.input)
        names = output_names(files)
        check_output_folder(args.output, list(names.values()), args.overwrite or args.resume)
        net, meta = load_segmenter(args.ckpt, map_location="cpu")
        declared = meta.class_kinds
        meta = replace(meta, class_kinds=measured_kinds(meta.class_names, declared, args.layer_classes))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _intensity_warning(args, meta)
    if args.devices != 1 or args.num_nodes != 1 or args.resume:  # Lightning's loop: imported only here
        from experiments.apply.predict_archive import predict_archive

        return predict_archive(args, files, names, net, meta, declared)
    net.to(device)
    write_classes(args, meta, declared)
    records, summaries, failures = {}, {}, []
    for path in tqdm(files, desc="images", unit="img", disable=args.quiet or len(files) == 1):
        outcome = record, summary, failure = predict_one(net, meta, path, names[path], args, device)
        write_marker(args.output, names[path], path, outcome, run_settings(args))  # for a later --resume
        if failure:
            failures.append(failure)
        else:
            records[names[path]] = record
        if summary is not None:
            summaries[names[path]] = summary
    return report_folder(args, meta, len(files), records, summaries, failures)
