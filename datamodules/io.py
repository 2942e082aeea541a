"""Read micrographs and masks from disk, pair them by name, and fail with errors that say what to do.

The one reader of micrographs, for training and `predict` alike: every image comes back as
``uint8 (H, W, 3)`` whatever was on disk (8/16-bit/float, grey/RGB/RGBA/palette TIFF or any format
PIL reads; multi-page files give their first page, with a warning), turned into 8 bits by the data
set's intensity rule (`datamodules.intensity`), together with the pixel size its metadata records
(`datamodules.pixel_size`). So the rest of the suite never sees bit depths or channel layouts.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from datamodules.intensity import DEFAULT_RULE, to_uint8
from datamodules.pixel_size import Calibration, read_calibration

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
#: the smallest side an image may have (reflect padding and resizing need two pixels)
MIN_SIDE = 2
#: PIL modes that are not grey/RGB(A) or raw numbers: converted to RGB
_CONVERT_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")


class DataError(ValueError):
    """Bad or missing input data; the message names the file and the fix."""


def default_root() -> Path:
    """Folder holding the data sets: ``$MICROSEG_DATA`` when set, else ``data/`` in the working directory."""
    return Path(os.environ.get("MICROSEG_DATA", "data"))


@dataclass(frozen=True)
class Micrograph:
    """A micrograph as the networks see it: ``image`` uint8 (H, W, 3), and its file's calibration."""

    image: np.ndarray
    calibration: Calibration | None


def _read(path: Path, palette_to_rgb: bool) -> tuple[np.ndarray, Calibration | None, int]:
    """The first image of the file, its calibration (TIFF only) and its number of pages or frames."""
    if path.suffix.lower() in (".tif", ".tiff"):
        # The first page, not the series: NASA's RGBA masks carry shape metadata that confuses series parsing.
        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].asarray(), read_calibration(tif), len(tif.pages)
    with Image.open(path) as img:
        img.load()
        frames = getattr(img, "n_frames", 1)
        if palette_to_rgb and img.mode in ("P", "PA"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        elif img.mode in _CONVERT_TO_RGB:
            img = img.convert("RGB")
        return np.asarray(img), None, frames


def _read_or_fail(path: str | Path, palette_to_rgb: bool) -> tuple[np.ndarray, Calibration | None, int]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path (and the data root) or re-download the data")
    try:
        return _read(path, palette_to_rgb)
    except PermissionError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror}); fix the file permissions") from err
    except (OSError, ValueError, IndexError, SyntaxError) as err:
        raise DataError(
            f"{path}: corrupt, truncated or not an image ({err}); replace or re-export the file "
            "(for the NASA sets: re-run `python -m experiments data download`)"
        ) from err


def read_array(path: str | Path, palette_to_rgb: bool = False) -> np.ndarray:
    """Raw pixel array of an image file (first page of a TIFF), without any conversion.

    ``palette_to_rgb`` expands a palette PNG to its colours (colour masks) instead of its indices.
    """
    return _read_or_fail(path, palette_to_rgb)[0]


def channels_last(array: np.ndarray) -> np.ndarray:
    """Move a planar ``(C, H, W)`` array (C ≤ 4) to ``(H, W, C)``; leave everything else alone."""
    if array.ndim == 3 and array.shape[0] <= 4 and array.shape[-1] > 4:
        return np.moveaxis(array, 0, -1)
    return array


def _image_layout(array: np.ndarray, path: Path) -> np.ndarray:
    """``(H, W, C)`` with C in 1..4, or a DataError that says what is wrong with the file."""
    array = channels_last(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] > 4:
        raise DataError(
            f"{path}: unsupported image layout {array.shape} (expected grey, RGB or RGBA); "
            "export a single 2-D image (one channel or three)"
        )
    if min(array.shape[:2]) < MIN_SIDE:
        raise DataError(
            f"{path}: image of {array.shape[1]}x{array.shape[0]} px is too small (each side needs at least "
            f"{MIN_SIDE} px); check that the file holds the micrograph, not a placeholder or an icon"
        )
    return array


def read_micrograph(path: str | Path, intensity: str = DEFAULT_RULE) -> Micrograph:
    """A micrograph as uint8 RGB by the ``intensity`` rule: grey is repeated, alpha is dropped."""
    path = Path(path)
    raw, calibration, pages = _read_or_fail(path, palette_to_rgb=True)
    if pages > 1:
        warnings.warn(f"{path}: {pages} pages or frames; using the first one only", stacklevel=2)
    array = _image_layout(raw, path)
    # alpha says nothing about the sample, and must not move the intensity rule's percentiles
    array = array[..., :1] if array.shape[-1] in (1, 2) else array[..., :3]
    try:
        array = to_uint8(array, intensity, path)
    except ValueError as err:
        raise DataError(str(err)) from err
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return Micrograph(np.ascontiguousarray(array), calibration)


def read_image(path: str | Path, intensity: str = DEFAULT_RULE) -> np.ndarray:
    """A micrograph's pixels as ``uint8 (H, W, 3)`` (see `read_micrograph`)."""
    return read_micrograph(path, intensity).image


def read_mask(path: str | Path, color: bool = False) -> np.ndarray:
    """A mask file's raw values, ``(H, W)`` for index masks or ``(H, W, C)`` for colour masks."""
    return channels_last(read_array(path, palette_to_rgb=color))


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name (hidden files skipped)."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def pair_by_name(
    image_dir: Path, mask_dir: Path, mask_names: Callable[[Path], list[str]]
) -> list[tuple[Path, Path]]:
    """Pair each image with the first existing mask named by ``mask_names(image)``.

    An image without a mask, or a mask without an image, is reported with ``warnings.warn`` and left
    out: a partial copy of a data set still trains on the pairs it has.
    """
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(
                f"{folder}: folder not found; check the data root (for the NASA sets: "
                "`python -m experiments data download`)"
            )
    masks = {p.name: p for p in list_images(mask_dir)}
    pairs, used = [], set()
    for image in list_images(image_dir):
        match = next((masks[n] for n in mask_names(image) if n in masks), None)
        if match is None:
            warnings.warn(f"{image}: no mask in {mask_dir}; skipping this image", stacklevel=2)
            continue
        pairs.append((image, match))
        used.add(match.name)
    for name in sorted(set(masks) - used):
        warnings.warn(f"{mask_dir / name}: mask without an image in {image_dir}; skipping it", stacklevel=2)
    if not pairs:
        raise DataError(
            f"{image_dir}: no image/mask pairs (with masks in {mask_dir}); add data to this split "
            "or check the folder names"
        )
    return pairs


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    """Raise when a mask does not cover its image pixel for pixel."""
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            f"{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image {image_path} "
            f"({image.shape[1]}x{image.shape[0]}); re-export the mask at the image's size"
        )
