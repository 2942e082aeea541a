"""Read micrographs and masks from disk, pair them by name, and fail with errors that say what to do.

Every image comes back as ``uint8 (H, W, 3)`` whatever was on disk (8/16-bit, grey/RGB/RGBA TIFF or
any format PIL reads), so the rest of the suite never sees bit depths or channel layouts.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


class DataError(ValueError):
    """Bad or missing input data; the message names the file and the fix."""


def default_root() -> Path:
    """Folder holding the data sets: ``$MICROSEG_DATA`` when set, else ``data/`` in the working directory."""
    return Path(os.environ.get("MICROSEG_DATA", "data"))


def read_array(path: str | Path, palette_to_rgb: bool = False) -> np.ndarray:
    """Raw pixel array of an image file (first page of a TIFF), without any conversion.

    ``palette_to_rgb`` expands a palette PNG to its colours (colour masks) instead of its indices.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path (and the data root) or re-download the data")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            # The first page, not the series: NASA's RGBA masks carry shape metadata that confuses series parsing.
            with tifffile.TiffFile(path) as tif:
                return tif.pages[0].asarray()
        with Image.open(path) as img:
            img.load()
            if palette_to_rgb and img.mode in ("P", "PA"):
                img = img.convert("RGB")
            return np.asarray(img)
    except PermissionError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror}); fix the file permissions") from err
    except (OSError, ValueError, IndexError, SyntaxError) as err:
        raise DataError(
            f"{path}: corrupt, truncated or not an image ({err}); replace the file, "
            "e.g. re-run `python -m experiments data download`"
        ) from err


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale any bit depth to 0-255: integers by the smallest power-of-two range holding their maximum."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        peak = float(array.max()) if array.size else 1.0
        scaled = array / peak if peak > 1.0 else array
        return (np.clip(scaled, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    peak = int(array.max()) if array.size else 0
    bits = max(8, int(peak).bit_length())  # 12-bit data in a 16-bit container stays bright
    return (array.astype(np.float64) * (255.0 / (2**bits - 1)) + 0.5).astype(np.uint8)


def channels_last(array: np.ndarray) -> np.ndarray:
    """Move a planar ``(C, H, W)`` array (C ≤ 4) to ``(H, W, C)``; leave everything else alone."""
    if array.ndim == 3 and array.shape[0] <= 4 and array.shape[-1] > 4:
        return np.moveaxis(array, 0, -1)
    return array


def read_image(path: str | Path) -> np.ndarray:
    """A micrograph as ``uint8 (H, W, 3)``: grey is repeated, alpha is dropped."""
    array = channels_last(read_array(path))
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{path}: unsupported image shape {array.shape}; save it as grey or RGB")
    array = to_uint8(array)
    if array.shape[-1] in (1, 2):  # grey or grey+alpha
        array = np.repeat(array[..., :1], 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


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

    Names match exactly or else ignoring case (``s0.PNG`` pairs with ``s0_mask.TIF``: cameras, Windows
    and scripts disagree on case), never one mask to two images. An image without a mask, or a mask
    without an image, is reported with ``warnings.warn`` and left out: a partial copy of a data set still
    trains on the pairs it has.
    """
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(
                f"{folder}: folder not found; check the data root (for the NASA sets: "
                "`python -m experiments data download`)"
            )
    masks = {p.name: p for p in list_images(mask_dir)}
    folded: dict[str, Path] = {}
    for path in masks.values():
        folded.setdefault(path.name.lower(), path)
    pairs, used = [], set()
    for image in list_images(image_dir):
        names = mask_names(image)
        match = next((masks[n] for n in names if n in masks), None)
        if match is None:  # the same names ignoring case, never a mask that another image has
            found = (folded.get(n.lower()) for n in names)
            match = next((m for m in found if m is not None and m.name not in used), None)
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


def read_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file from its header, without decoding the pixels.

    A file whose header cannot be parsed is handed to :func:`read_array`, which names the problem.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError, IndexError, SyntaxError, AttributeError):
        shape = channels_last(read_array(path)).shape
        return int(shape[0]), int(shape[1])


def check_same_size(
    image_size: Sequence[int], mask_size: Sequence[int], image_path: Path, mask_path: Path
) -> None:
    """Raise when a mask (height, width) does not cover its image pixel for pixel."""
    (ih, iw), (mh, mw) = image_size[:2], mask_size[:2]
    if (ih, iw) != (mh, mw):
        raise DataError(
            f"{mask_path}: mask size {mw}x{mh} differs from image {image_path} "
            f"({iw}x{ih}); re-export the mask at the image's size"
        )
