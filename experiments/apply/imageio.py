"""predict's output files: index masks (written, and read back by `measure`), overlays, uncertainty
maps, class colours.

Micrographs are read by `datamodules.io` (the one reader, shared with training), not here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageDraw, ImageFont

#: rows blended or coloured at a time (bounds the float temporaries of large pictures)
BAND_ROWS = 512


def write_index_mask(mask: np.ndarray, path: str | Path) -> None:
    """Save class indices as a single-channel 8-bit PNG (pixel value = class index)."""
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def uncertainty_picture(uncertainty: np.ndarray) -> Image.Image:
    """A 0-1 uncertainty map in the inferno colour map (black: certain, yellow: classes equally likely)."""
    from matplotlib import colormaps

    cmap = colormaps["inferno"]
    picture = np.empty(uncertainty.shape + (3,), np.uint8)
    for top in range(0, len(uncertainty), BAND_ROWS):
        picture[top : top + BAND_ROWS] = cmap(uncertainty[top : top + BAND_ROWS], bytes=True)[..., :3]
    return Image.fromarray(picture)


def write_uncertainty(uncertainty: np.ndarray, out_dir: Path, stem: str) -> None:
    """``<stem>_uncertainty.png`` (the picture) and ``<stem>_uncertainty.tif`` (float32, the values)."""
    uncertainty_picture(uncertainty).save(out_dir / f"{stem}_uncertainty.png")
    tifffile.imwrite(out_dir / f"{stem}_uncertainty.tif", uncertainty.astype(np.float32, copy=False))


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
    """Blend the class colours over a uint8 RGB image (class 0, the matrix/background, stays clear) + legend.

    Blended in bands of rows, so the float temporaries stay small whatever the image size.
    """
    colors = np.asarray(class_colors, dtype=np.float32)
    blended = np.empty(image.shape[:2] + (3,), np.uint8)
    for top in range(0, len(image), BAND_ROWS):
        rgb = image[top : top + BAND_ROWS].astype(np.float32)
        labels = mask[top : top + BAND_ROWS]
        tinted = np.where((labels > 0)[..., None], (1 - alpha) * rgb + alpha * colors[labels], rgb)
        blended[top : top + BAND_ROWS] = tinted.clip(0, 255).astype(np.uint8)
    out = Image.fromarray(blended)
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
