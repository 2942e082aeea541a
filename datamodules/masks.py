"""Pure mask decoders: raw mask pixels in, ``uint8 (H, W)`` class indices out.

The ``source`` argument only names the file in error messages; nothing here touches the disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from datamodules.io import DataError

SUPER_CLASSES = ("matrix", "secondary", "tertiary")
SUPER_COLORS = ((0, 0, 0), (0, 0, 255), (255, 0, 0))
SUPER_KINDS = ("matrix", "particles", "particles")  # γ′ precipitates are counted and sized
#: EBC classes with crack kept (the first two without it): the oxide is a layer, measured by its thickness
EBC_CLASSES = ("background", "oxide", "crack")
EBC_KINDS = ("matrix", "layer", "particles")
#: NASA EBC index masks: 0 background/substrate, 1 oxide, 2 crack
EBC_MERGED = {0: 0, 1: 1, 2: 1}  # crack -> oxide, the paper's two classes (NASA's example does the same)
EBC_WITH_CRACK = {0: 0, 1: 1, 2: 2}
#: formats whose compression changes pixel values: a mask saved so has values no class was drawn with
LOSSY_SUFFIXES = (".jpg", ".jpeg")


def _fix(source: str | Path, fix: str) -> str:
    """The fix to suggest for unknown mask values: re-saving losslessly when the mask is a JPEG."""
    if Path(str(source)).suffix.lower() in LOSSY_SUFFIXES:
        return "JPEG is lossy and alters mask values along every edge; save the masks as PNG or TIFF"
    return fix


def decode_super(overlay: np.ndarray, source: str | Path = "<array>") -> np.ndarray:
    """NASA Super* RGBA overlay: pure blue = secondary (1), pure red = tertiary (2), any other colour = matrix."""
    if overlay.ndim != 3 or overlay.shape[-1] < 3:
        raise DataError(
            f"{source}: expected an RGB(A) colour overlay, got shape {overlay.shape}; "
            "Super masks mark secondary in blue (0,0,255) and tertiary in red (255,0,0)"
        )
    r, g, b = (overlay[..., i] for i in range(3))
    out = np.zeros(overlay.shape[:2], np.uint8)
    out[(r == 0) & (g == 0) & (b == 255)] = 1
    out[(r == 255) & (g == 0) & (b == 0)] = 2
    return out


def decode_indices(
    mask: np.ndarray, mapping: Mapping[int, int], source: str | Path = "<array>"
) -> np.ndarray:
    """Map stored index values to class ids; a value outside ``mapping`` is an error naming the file."""
    if mask.ndim == 3 and all(
        np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, min(3, mask.shape[-1]))
    ):
        mask = mask[..., 0]  # index masks saved as grey RGB
    if mask.ndim != 2:
        raise DataError(f"{source}: expected a single-channel index mask, got shape {mask.shape}")
    values = np.unique(mask)
    unknown = [int(v) for v in values if int(v) not in mapping]
    if unknown:
        raise DataError(
            f"{source}: mask values {unknown[:10]} are outside the class map {dict(mapping)}; "
            + _fix(source, "fix the mask or add these values to the class list")
        )
    lut = np.zeros(int(values.max()) + 1, np.uint8)
    for value, cls in mapping.items():
        if 0 <= value < lut.size:
            lut[value] = cls
    return lut[mask]


def decode_colors(
    mask: np.ndarray, colors: Sequence[Sequence[int]], source: str | Path = "<array>"
) -> np.ndarray:
    """Map each RGB colour to the index of that colour in ``colors``; an unknown colour is an error."""
    if mask.ndim != 3 or mask.shape[-1] < 3:
        raise DataError(f"{source}: expected an RGB colour mask, got shape {mask.shape}")
    rgb = mask[..., :3].astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    keys = np.array([(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in colors], np.int64)
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], code), 0, len(keys) - 1)
    found = keys[order][pos] == code
    if not found.all():
        y, x = np.argwhere(~found)[0]
        colour = tuple(int(c) for c in rgb[y, x])
        raise DataError(
            f"{source}: colour {colour} (first at x={x}, y={y}) is not in the class list "
            f"{[tuple(c) for c in colors]}; " + _fix(source, "add a class with this colour or fix the mask")
        )
    return order[pos].astype(np.uint8)
