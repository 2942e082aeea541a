"""Read micrographs as labs store them, and write masks and overlays.

Kept separate from `datamodules.io` (which pairs training images with masks): here any single file a
microscope writes must become a float RGB image in 0-1, and every failure must name the file.

Intensity scaling (documented in the README):
- 8-bit images are divided by 255.
- 16-bit and float images are scaled by ``scale``: ``"percentile"`` (default) maps the 0.5th..99.5th
  percentile of the image to 0..1 and clips, which suits 12/14-bit detectors stored in 16-bit words;
  ``"full"`` divides by the full range of the data type (65535), or by the image maximum for floats.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageDraw, ImageFont

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
SCALES = ("percentile", "full")
PERCENTILES = (0.5, 99.5)


def _read_raw(path: Path) -> np.ndarray:
    """The first image of the file as an array (H, W) or (H, W, C); warns when there are more pages."""
    if path.suffix.lower() in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tif:
            pages = len(tif.pages)
            array = tif.pages[0].asarray()
        if pages > 1:
            warnings.warn(
                f"{path}: multi-page TIFF with {pages} pages, using the first page only", stacklevel=3
            )
        return array
    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            warnings.warn(f"{path}: {frames} frames, using the first one only", stacklevel=3)
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        return np.asarray(img)


def _to_unit_range(array: np.ndarray, path: Path, scale: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == bool:
        return array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: unsupported pixel type {array.dtype}; save the image as 8/16-bit or float")
    data = array.astype(np.float32)
    if scale == "percentile":
        low, high = np.percentile(data, PERCENTILES)
    elif np.issubdtype(array.dtype, np.integer):
        low, high = 0.0, float(np.iinfo(array.dtype).max)
    else:
        low, high = min(0.0, float(data.min())), float(data.max())
    if high <= low:  # a flat image: keep it flat rather than dividing by zero
        return np.zeros_like(data)
    return np.clip((data - low) / (high - low), 0.0, 1.0).astype(np.float32)


def read_micrograph(path: str | Path, scale: str = "percentile") -> np.ndarray:
    """Read one micrograph as float32 RGB (H, W, 3) in 0..1.

    Grey images are repeated to three channels (the networks take RGB); an alpha channel is dropped.
    Raises ValueError, naming the file, for unreadable files and layouts that are not an image.
    """
    path = Path(path)
    if scale not in SCALES:
        raise ValueError(f"unknown intensity scale {scale!r}; use one of {', '.join(SCALES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        array = _read_raw(path)
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise ValueError(f"{path} is not a readable image ({err}); use TIFF, PNG or JPEG") from err
    array = np.squeeze(array)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) TIFF
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        array = array[..., :-1]  # drop alpha (grey+alpha or RGBA)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 2:
        raise ValueError(
            f"{path}: unsupported image layout {array.shape} (expected grey, RGB or RGBA); "
            "export a single 2-D image (one channel or three)"
        )
    return _to_unit_range(array, path, scale)


def list_images(path: str | Path) -> list[Path]:
    """The image files to process: the file itself, or the images directly inside a folder, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    return files


def write_index_mask(mask: np.ndarray, path: str | Path) -> None:
    """Save class indices as a single-channel 8-bit PNG (pixel value = class index)."""
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def read_index_mask(path: str | Path) -> np.ndarray:
    """Read a single-channel index mask (PNG or TIFF) written by `predict` or by hand."""
    path = Path(path)
    try:
        array = (
            tifffile.imread(path)
            if path.suffix.lower() in (".tif", ".tiff")
            else np.asarray(Image.open(path))
        )
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise ValueError(f"{path} is not a readable mask ({err})") from err
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{path}: a mask must be one channel of integer class indices, got {array.shape} {array.dtype}; "
            "use the *_mask.png files written by `predict`"
        )
    return array.astype(np.int64)


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    class_names: list[str],
    class_colors: list[tuple[int, int, int]],
    alpha: float = 0.45,
) -> Image.Image:
    """Blend the class colours over the image (class 0, the matrix/background, stays clear) + legend."""
    rgb = (image * 255).astype(np.float32)
    colors = np.asarray(class_colors, dtype=np.float32)
    tinted = np.where((mask > 0)[..., None], (1 - alpha) * rgb + alpha * colors[mask], rgb)
    out = Image.fromarray(tinted.clip(0, 255).astype(np.uint8))
    _draw_legend(out, class_names[1:], class_colors[1:])
    return out


def _draw_legend(img: Image.Image, names: list[str], colors: list[tuple[int, int, int]]) -> None:
    if not names:
        return
    size = max(12, min(img.size) // 40)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(img)
    width = max(draw.textlength(n, font=font) for n in names) + 2.2 * size
    pad = size // 3
    draw.rectangle((0, 0, width + 2 * pad, len(names) * (size + pad) + pad), fill=(255, 255, 255))
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        top = pad + i * (size + pad)
        draw.rectangle((pad, top, pad + size, top + size), fill=tuple(color), outline=(0, 0, 0))
        draw.text((2 * pad + size + 2, top), name, fill=(0, 0, 0), font=font)


def default_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """A distinct colour per class when the checkpoint carries none (matplotlib's tab10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [tuple(int(255 * v) for v in cmap(i % 10)[:3]) for i in range(num_classes)]
