"""predict for a TIFF too large to decode whole (`experiments.apply.strips.STRIP_PIXELS`): one pass in strips.

The image is read band by band (`TiffRows`), segmented by the same engine as any other image
(`lightning_modules.inference.segment_strips`), and its uncertainty map streamed to a tiled BigTIFF as
rows finish; only the uint8 mask of the whole image is held (1 byte a pixel), with one band of logits
and downsampled copies of the image and the uncertainty for the pictures. Outputs are those of an
ordinary image, except: the overlay and ``<stem>_uncertainty.png`` are downsampled to at most
`THUMBNAIL_SIDE` px; above `HUGE_PIXELS` the mask is a tiled BigTIFF ``<stem>_mask.tif`` (PNG
encoders hold the whole image several times over) and only area fractions are measured, as labelling
particles or tracing layers would need several bytes a pixel (run `measure` on crops of the mask for
those). Resampling to the training resolution happens band by band too (`resampled_source`).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import numpy as np
import torch
from tqdm.auto import tqdm

from datamodules.pixel_size import Calibration
from datamodules.transforms import scaled_size
from experiments.apply.imageio import default_colors, overlay, uncertainty_picture, write_index_mask
from experiments.apply.measure import settings_from
from experiments.apply.measure_report import for_summary, write_measurements
from experiments.apply.measurements import measure_mask
from experiments.apply.preprocess import parse_resample, resample_factor
from experiments.apply.records import image_entry
from experiments.apply.strips import (
    HUGE_PIXELS,
    TiffRows,
    resampled_source,
    thumbnail_step,
    tiles,
    write_tiled,
)
from lightning_modules.checkpoint import SegmenterMeta
from lightning_modules.inference import Prepare, RowSource, normalise, normalise_pixels, segment_strips

#: what a mask above `HUGE_PIXELS` is, in words
TOO_LARGE = "above 8192x8192 px (67 MP)"


def engine_options(args: argparse.Namespace, device: torch.device) -> dict:
    """predict's options for `lightning_modules.inference.segment_strips`."""
    return {
        "tile": args.tile,
        "overlap": args.overlap,
        "batch_size": args.batch_size,
        "device": device,
        "tta": args.tta,
        "progress": not args.quiet,
    }


def measured(
    mask: np.ndarray, meta: SegmenterMeta, args: argparse.Namespace, stem: str, record: dict, calibration
) -> dict:
    """Measure a mask (area fractions only above `HUGE_PIXELS`), write the files, return the summary."""
    huge = mask.size > HUGE_PIXELS
    kinds = ["matrix"] * meta.num_classes if huge else meta.class_kinds
    size = calibration.size if calibration else None
    result = measure_mask(mask, meta.class_names, kinds, size, settings_from(args))
    result["summary"]["mean_uncertainty"] = record["mean_uncertainty"]
    if huge:  # the kinds the classes have, though only their area was measured
        result["summary"]["class_kinds"] = dict(zip(meta.class_names, meta.class_kinds, strict=True))
        result["summary"]["not_measured"] = f"particles and layers ({TOO_LARGE}); measure crops of the mask"
    write_measurements(result, args.output, stem, size)
    return for_summary(result)


def _network_input(
    reader: TiffRows, meta: SegmenterMeta, network: tuple[int, int]
) -> tuple[RowSource, Prepare | None]:
    """The engine's band source and per-batch ``prepare`` for ``reader``'s image at ``network`` = (h, w).

    At the image's own resolution the bands stay uint8 (1 byte a channel) and each window batch is
    normalised as it runs; resampling needs floats, so there the bands are normalised first (the
    order `predict` of an image in memory uses, for the same bits).
    """
    if network == (reader.height, reader.width):
        pixels = lambda first, stop: torch.from_numpy(reader.rows(first, stop)).permute(2, 0, 1)  # noqa: E731
        return pixels, partial(normalise_pixels, mean=meta.mean, std=meta.std)
    read = lambda first, stop: normalise(reader.rows(first, stop), meta.mean, meta.std)  # noqa: E731
    return resampled_source(read, reader.height, reader.width, network), None


def predict_in_strips(
    net: torch.nn.Module,
    meta: SegmenterMeta,
    path,
    stem: str,
    args: argparse.Namespace,
    device: torch.device,
    given: Calibration | None,
) -> tuple[dict, dict | None]:
    """Segment the TIFF ``path`` in strips and write its outputs; returns its record and its summary."""
    out = args.output
    with TiffRows(path, args.scale or meta.intensity) as reader:
        calibration = given or reader.calibration
        factor, basis = resample_factor(meta, calibration, parse_resample(args.resample), path)
        height, width = reader.height, reader.width
        step = thumbnail_step(height, width)
        mask = np.empty((height, width), np.uint8)
        pictured: list[np.ndarray] = []
        total = [0.0]

        network = scaled_size(height, width, factor)
        source, prepare = _network_input(reader, meta, network)

        def uncertainty_rows():
            options = engine_options(args, device) | {"prepare": prepare}
            for strip in segment_strips(net, source, network, meta.num_classes, (height, width), **options):
                mask[strip.row : strip.row + len(strip.mask)] = strip.mask
                total[0] += float(strip.uncertainty.sum(dtype=np.float64))
                # a copy: a view would keep the whole strip's float map alive
                pictured.append(strip.uncertainty[(-strip.row) % step :: step, ::step].copy())
                yield strip.uncertainty

        write_tiled(
            out / f"{stem}_uncertainty.tif", tiles(uncertainty_rows(), width), (height, width), np.float32
        )
        small_image = reader.thumbnail(step)
    huge = mask.size > HUGE_PIXELS
    if huge:
        write_tiled(out / f"{stem}_mask.tif", mask, mask.shape, np.uint8)
    else:
        write_index_mask(mask, out / f"{stem}_mask.png")
    colors = meta.class_colors or default_colors(meta.num_classes)
    overlay(small_image, mask[::step, ::step], meta.class_names, colors).save(out / f"{stem}_overlay.png")
    uncertainty_picture(np.concatenate(pictured)).save(out / f"{stem}_uncertainty.png")
    pixel = f"pixel {calibration.size} ({calibration.source})" if calibration else "no pixel size"
    shrunk = f"; overlay and uncertainty picture at 1/{step}" if step > 1 else ""
    done = (
        "not resampled"
        if network == (height, width)
        else f"resampled x{factor:.4g} to {network[1]}x{network[0]} px and back"
    )
    tqdm.write(
        f"{path.name}: {width}x{height} px, {pixel}; read in strips, {done} ({basis}){shrunk}",
        file=sys.stdout,
    )
    record = image_entry(
        calibration,
        input=str(path),
        size_px=[width, height],
        network_input_px=[network[1], network[0]],
        resample_factor=factor,
        resample_basis=basis,
        mean_uncertainty=total[0] / mask.size,
        read_in_strips=True,
    )
    if args.no_measure:
        return record, None
    if huge:
        print(
            f"warning: {path}: {width}x{height} px is {TOO_LARGE}; only area fractions are measured "
            "(particles and layers need several bytes a pixel); run `measure` on crops of the mask",
            file=sys.stderr,
        )
    return record, measured(mask, meta, args, stem, record, calibration)
