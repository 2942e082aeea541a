"""Seeded synthetic micrographs with exact masks: the embedded default when no data is present, and
the input of fast tests.

* Super-like: irregular secondary γ′ (warped Voronoi cells, some coalesced) separated by γ channels,
  loose clusters of small separate tertiary γ′ discs in the wider matrix regions, bright γ rims, low
  phase contrast (as measured on Super1), SEM-like shading, polishing scratches, blur and noise.
* EBC-like: porous bright coating on top, an oxide layer of varying thickness with voids and thin
  vertical cracks, and a darker substrate with inclusions.

The mask is drawn from the geometry; blur and noise touch only the image, so the mask is exact.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from scipy.spatial import cKDTree

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


def _secondary(rng: np.random.Generator, size: int) -> np.ndarray:
    """Secondary γ′: warped Voronoi cells of a jittered grid, shrunk to leave γ channels between them.

    Channels of varying width separate neighbours (a few pairs coalesce), and some cells stay empty, so
    the matrix has narrow channels and wider regions, as in Super1's etched γ/γ′.
    """
    cell = size / rng.uniform(5.0, 6.5)
    n = int(np.ceil(size / cell)) + 2
    grid = np.stack(np.mgrid[-1 : n - 1, -1 : n - 1], -1).reshape(-1, 2)
    seeds = (grid + 0.5 + rng.uniform(-0.3, 0.3, grid.shape)) * cell
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # coarse + fine warps bend the straight cell edges into lobed, partly concave outlines
    warp = [
        0.3 * cell * _smooth_field(rng, size, 5) + 0.08 * cell * _smooth_field(rng, size, 14) for _ in "yx"
    ]
    warped = np.stack([yy + warp[0], xx + warp[1]])
    dist, index = cKDTree(seeds).query(warped.reshape(2, -1).T, k=2)
    d1, d2 = (dist[:, i].reshape(size, size) for i in (0, 1))
    nearest, second = (index[:, i].reshape(size, size) for i in (0, 1))
    half_channel = cell * rng.uniform(0.04, 0.07) * (1 + 0.5 * _smooth_field(rng, size, 6))
    radius = cell * rng.uniform(0.38, 0.65, len(seeds))
    present = rng.random(len(seeds)) > 0.25
    merged = rng.random((len(seeds), len(seeds))) < 0.08
    apart = ((d2 - d1) / 2 > half_channel) | (merged | merged.T)[nearest, second]
    inside = apart & present[nearest] & (d1 < radius[nearest] * (1 + 0.15 * _smooth_field(rng, size, 8)))
    return cv2.GaussianBlur(inside.astype(np.float32), (0, 0), cell * 0.05) > 0.5  # rounded corners


def _tertiary(rng: np.random.Generator, size: int, secondary: np.ndarray) -> np.ndarray:
    """Tertiary γ′: separate small discs (log-normal radii) in loose clusters in the matrix, never touching."""
    dots = np.zeros((size, size), bool)
    room = cv2.distanceTransform((~secondary).astype(np.uint8), cv2.DIST_L2, 3)
    mean_radius = size / 110
    centres = np.argwhere(room > 2 * mean_radius + 1)
    yy, xx = np.mgrid[0:size, 0:size]
    placed = np.empty((0, 3))  # (y, x, radius) of the discs so far
    for _ in range(int(rng.integers(10, 18)) if len(centres) else 0):  # same field of view at any size
        cy, cx = centres[rng.integers(len(centres))]
        spread = size / rng.uniform(15, 35)
        for _ in range(int(rng.integers(10, 24))):
            r = max(0.8, float(mean_radius * np.clip(np.exp(rng.normal(0, 0.35)), 0.5, 2.2)))
            py, px = rng.normal((cy, cx), spread)
            if not (0 <= py < size and 0 <= px < size) or room[int(py), int(px)] < r + 1:
                continue
            if (np.hypot(placed[:, 0] - py, placed[:, 1] - px) < placed[:, 2] + r + 1.5).any():
                continue
            placed = np.vstack([placed, (py, px, r)])
            y0, y1, x0, x1 = (int(max(0, v)) for v in (py - r - 1, py + r + 2, px - r - 1, px + r + 2))
            window = (yy[y0:y1, x0:x1] + 0.5 - py) ** 2 + (xx[y0:y1, x0:x1] + 0.5 - px) ** 2 <= r * r
            dots[y0:y1, x0:x1] |= window
    return dots & ~secondary


def _scratches(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few faint straight polishing scratches (brighter or darker lines) at random angles."""
    layer = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(0, 4))):
        (y, x), angle, half = rng.uniform(0, size, 2), rng.uniform(0, np.pi), rng.uniform(0.1, 0.4) * size
        dy, dx = np.sin(angle) * half, np.cos(angle) * half
        value = float(rng.choice([-1, 1]) * rng.uniform(3, 8))
        cv2.line(layer, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), value, 1)
    return layer


def make_super(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A Super-like γ/γ′ micrograph and its mask (0 matrix, 1 secondary, 2 tertiary).

    ``size`` 256 matches a 512² Super image at half resolution (precipitate sizes, tertiary counts and
    the low grey-level contrasts of NASA's Super1 were measured to set the ranges).
    """
    secondary = _secondary(rng, size)
    mask = secondary.astype(np.uint8)
    mask[_tertiary(rng, size, secondary)] = 2
    matrix = rng.uniform(110, 190)
    darker = rng.uniform(10, 18)  # secondary below the matrix; tertiary darker still
    grey = np.choose(mask, [matrix, matrix - darker, matrix - darker - rng.uniform(10, 20)]).astype(
        np.float32
    )
    outside = cv2.distanceTransform((~secondary).astype(np.uint8), cv2.DIST_L2, 3)
    grey += rng.uniform(10, 20) * np.exp(-outside / (2 * size / 256)) * (mask == 0)  # bright γ rims
    grey += 3 * _smooth_field(rng, size, max(4, size // 8)) + 4 * _smooth_field(
        rng, size, 3
    )  # shading as on Super1
    grey += _scratches(rng, size)
    return _finish(rng, grey, blur=rng.uniform(0.6, 1.1), noise=rng.uniform(3, 5.5)), mask


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
