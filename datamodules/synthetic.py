"""Seeded synthetic micrographs with exact masks: the embedded default when no data is present, and
the input of fast tests.

* Super-like: large rounded-cuboid secondary γ′ on a jittered grid, clusters of small tertiary γ′ in the
  matrix channels, bright rims, SEM-like shading, blur, noise and brightness/contrast variation.
* EBC-like: porous bright coating on top, an oxide layer of varying thickness with voids and thin
  vertical cracks, and a darker substrate with inclusions.

The mask is drawn from the geometry; blur and noise touch only the image, so the mask is exact.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from datamodules.base import SegmentationDataModule
from datamodules.masks import (
    EBC_CLASSES,
    EBC_KINDS,
    EBC_MERGED,
    EBC_WITH_CRACK,
    SUPER_CLASSES,
    SUPER_COLORS,
    SUPER_KINDS,
)
from datamodules.samples import Generated
from datamodules.transforms import Preset

Kind = Literal["super", "ebc"]


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid resized bicubically."""
    coarse = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), -1, 1)


def _smooth_curve(rng: np.random.Generator, size: int, points: int, amplitude: float) -> np.ndarray:
    """A smooth 1-D profile of ``size`` values, ``points`` random control points, ± amplitude."""
    knots = rng.uniform(-amplitude, amplitude, points)
    return np.interp(np.arange(size), np.linspace(0, size - 1, points), knots)


def _finish(rng: np.random.Generator, grey: np.ndarray, blur: float, noise: float) -> np.ndarray:
    """Microscope look: blur, brightness/contrast jitter, Gaussian noise; grey → uint8 RGB."""
    grey = cv2.GaussianBlur(grey, (0, 0), blur)
    grey = (grey - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    grey = grey + rng.normal(0, noise, grey.shape).astype(np.float32)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def make_super(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A Super-like γ/γ′ micrograph and its mask (0 matrix, 1 secondary, 2 tertiary)."""
    cell = size / rng.uniform(4.0, 6.0)
    n = int(np.ceil(size / cell)) + 1
    extent = rng.uniform(0.55, 0.85, (n, n, 2)) / 2  # half-size of each precipitate, in cells
    jitter = rng.uniform(-1, 1, (n, n, 2)) * (0.5 - extent)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / cell
    iy, ix = np.floor(yy).astype(int), np.floor(xx).astype(int)
    u = (xx - ix - 0.5 - jitter[iy, ix, 0]) / extent[iy, ix, 0]
    v = (yy - iy - 0.5 - jitter[iy, ix, 1]) / extent[iy, ix, 1]
    shape = np.abs(u) ** 4 + np.abs(v) ** 4  # rounded cuboids
    secondary = shape < 1.0 + 0.6 * _smooth_field(rng, size, max(4, size // 24))
    mask = secondary.astype(np.uint8)

    # tertiary: clusters of small discs in the matrix channels, clear of the secondary
    dots = np.zeros((size, size), np.uint8)
    room = cv2.distanceTransform((~secondary).astype(np.uint8), cv2.DIST_L2, 3)
    channel = np.argwhere(room > max(3.0, size / 80))
    radius = max(1.5, size / 120)
    for _ in range(int(rng.integers(4, 10)) if len(channel) else 0):
        cy, cx = channel[rng.integers(len(channel))]
        for _ in range(int(rng.integers(5, 14))):
            py, px = rng.normal((cy, cx), size / 40)
            cv2.circle(dots, (int(px), int(py)), int(round(radius * rng.uniform(0.7, 1.4))), 1, -1)
    mask[(dots > 0) & ~secondary] = 2

    matrix, prec, tert = rng.uniform(150, 175), rng.uniform(110, 135), rng.uniform(85, 110)
    grey = np.choose(mask, [matrix, prec, tert]).astype(np.float32)
    rim = cv2.morphologyEx(secondary.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    grey += 25 * cv2.GaussianBlur(rim.astype(np.float32), (0, 0), 1.0)
    grey += 12 * _smooth_field(rng, size, 3) + 4 * _smooth_field(rng, size, max(4, size // 16))
    return _finish(rng, grey, blur=rng.uniform(0.6, 1.4), noise=rng.uniform(3, 9)), mask


def make_ebc(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """An EBC-like cross-section and its mask (0 background: coating/substrate, 1 oxide, 2 crack)."""
    top = size * rng.uniform(0.45, 0.6) + _smooth_curve(rng, size, 12, size * 0.04)
    top += _smooth_curve(rng, size, 60, size * 0.01)  # rough coating/oxide interface
    thickness = size * rng.uniform(0.08, 0.15) + _smooth_curve(rng, size, 8, size * 0.03)
    bottom = top + np.maximum(thickness, 3)
    yy = np.arange(size)[:, None].astype(np.float32)
    oxide = (yy >= top[None]) & (yy < bottom[None])
    mask = oxide.astype(np.uint8)

    cracks = np.zeros((size, size), np.uint8)
    for cx in rng.choice(size, int(rng.integers(2, 7)), replace=False):
        y0, y1 = int(top[cx]), int(bottom[cx])
        pts = [(int(cx + rng.integers(-2, 3)), y) for y in np.linspace(y0, y1, 5).astype(int)]
        cv2.polylines(cracks, [np.array(pts, np.int32)], False, 1, 1)
    mask[(cracks > 0) & oxide] = 2

    coating = yy < top[None]
    grey = np.where(coating, rng.uniform(200, 230), rng.uniform(60, 80)).astype(np.float32)
    grey[oxide] = rng.uniform(100, 120)
    pores = _smooth_field(rng, size, max(6, size // 10)) > rng.uniform(0.45, 0.6)
    grey[coating & pores] = rng.uniform(20, 60)  # coating porosity (still background)
    voids = (_smooth_field(rng, size, max(8, size // 8)) > 0.7) & oxide
    grey[voids] = 35  # horizontal voids inside the oxide (still oxide)
    inclusions = (_smooth_field(rng, size, max(8, size // 8)) > 0.88) & (yy >= bottom[None])
    grey[inclusions] = 25
    grey[mask == 2] = 20
    grey += 6 * _smooth_field(rng, size, 3)
    return _finish(rng, grey, blur=rng.uniform(0.5, 1.0), noise=rng.uniform(3, 8)), mask


GENERATORS = {"super": make_super, "ebc": make_ebc}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def generate(kind: Kind, seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``index`` of ``split``: the same arguments always give the same image and mask."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    return GENERATORS[kind](rng, size)


def labelled(
    kind: Kind, seed: int, split: str, index: int, size: int, keep_crack: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`generate` with the class map of the data module: EBC crack merged into oxide unless kept."""
    image, mask = generate(kind, seed, split, index, size)
    if kind == "ebc":
        mask = np.array([(EBC_WITH_CRACK if keep_crack else EBC_MERGED)[i] for i in range(3)], np.uint8)[mask]
    return image, mask


class Synthetic(SegmentationDataModule):
    """Synthetic Super-like or EBC-like micrographs, generated in memory (no files).

    Args:
        kind: ``super`` (matrix / secondary / tertiary) or ``ebc`` (background / oxide [/ crack]).
        size: side of the square images.
        num_train, num_val, num_test: samples per split.
        seed: base seed; every sample is a pure function of (seed, split, index).
        keep_crack: for ``ebc``, keep crack as a third class instead of merging it into oxide.
    """

    def __init__(
        self,
        kind: Kind = "super",
        size: int = 256,
        num_train: int = 16,
        num_val: int = 4,
        num_test: int = 4,
        seed: int = 0,
        keep_crack: bool = False,
        augment: Preset | None = None,
        **kwargs,
    ) -> None:
        if kind not in GENERATORS:
            raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
        if kind == "super":
            names, colors, kinds = SUPER_CLASSES, SUPER_COLORS, SUPER_KINDS
        else:
            n = 3 if keep_crack else 2
            names, colors, kinds = EBC_CLASSES[:n], None, EBC_KINDS[:n]
        augment = augment or ("strong" if kind == "super" else "upright")  # our presets, not NASA's
        super().__init__(class_names=names, class_colors=colors, class_kinds=kinds, augment=augment, **kwargs)
        self.dataset_name = "synthetic"
        self.kind, self.size, self.seed, self.keep_crack = kind, size, seed, keep_crack
        self.counts = {"train": num_train, "val": num_val, "test": num_test}

    def load_split(self, split: str) -> list[Generated]:
        """Each sample is generated when it is read (once, in memory; or per access, lazily)."""
        return [
            Generated(
                f"{self.kind}_{split}_{i:04d}",
                labelled,
                (self.kind, self.seed, split, i, self.size, self.keep_crack),
                (self.size, self.size),
            )
            for i in range(self.counts[split])
        ]
