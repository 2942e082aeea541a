"""Masks with a known answer: discs, touching clusters, ellipses, tilted and curved bands.

Each shape is digitised by pixel centres (a pixel belongs to the shape when its centre does) at
sub-pixel positions chosen by a seeded generator, so a grid of shapes samples the digitisation
phases instead of one lucky alignment. Used by docs/measurements.md (`measurement_accuracy`) and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLUSTERS = ("pair", "chain", "triangle")


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return rows.astype(np.float64), cols.astype(np.float64)


def discs(shape: tuple[int, int], centres: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """Union of discs of ``radius`` at ``centres`` (row, col)."""
    rows, cols = _grid(shape)
    mask = np.zeros(shape, bool)
    for row, col in centres:
        mask |= (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
    return mask


def cluster_centres(
    kind: str, radius: float, overlap: float, centre: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Centres of 2 (``pair``) or 3 (``chain``: bent up to 45°, ``triangle``: compact) touching discs.

    ``overlap`` is the fraction of the diameter by which neighbours overlap: 0 touching, 0.2 means
    centres 0.8 diameters apart. The cluster has a random orientation and its centroid at ``centre``.
    """
    step = 2 * radius * (1 - overlap)
    angle = rng.uniform(0, 2 * np.pi)

    def unit(a: float) -> np.ndarray:
        return np.array([np.sin(a), np.cos(a)])

    first = np.zeros(2)
    second = first + step * unit(angle)
    if kind == "pair":
        centres = np.stack([first, second])
    elif kind == "chain":
        centres = np.stack([first, second, second + step * unit(angle + rng.uniform(-np.pi / 4, np.pi / 4))])
    elif kind == "triangle":
        centres = np.stack([first, second, first + step * unit(angle + np.pi / 3)])
    else:
        raise ValueError(f"unknown cluster kind {kind!r}; use one of {', '.join(CLUSTERS)}")
    return centres - centres.mean(axis=0) + np.asarray(centre, dtype=np.float64)


def ellipse(
    shape: tuple[int, int], semi_major: float, semi_minor: float, angle: float, centre: Sequence[float]
) -> np.ndarray:
    """Filled ellipse, major axis at ``angle`` (radians) from the columns axis."""
    rows, cols = _grid(shape)
    y, x = rows - centre[0], cols - centre[1]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    return (u / semi_major) ** 2 + (v / semi_minor) ** 2 <= 1


def tilted_band(
    shape: tuple[int, int], thickness: float, angle_deg: float, offset: float = 0.0
) -> np.ndarray:
    """A straight band of normal thickness ``thickness`` through the image centre (+ ``offset`` rows),
    rising at ``angle_deg`` from the horizontal (half-open, so a level band has exactly that many rows)."""
    rows, cols = _grid(shape)
    angle = np.deg2rad(angle_deg)
    across = -(cols - shape[1] / 2 - 0.17) * np.sin(angle) + (rows - shape[0] / 2 - offset) * np.cos(angle)
    return (across >= -thickness / 2) & (across < thickness / 2)


def band_digitised_thickness(mask: np.ndarray, angle_deg: float, offset: float = 0.0) -> float:
    """The thickness the digitised `tilted_band` really has: its area over its centreline's length.

    Inside the image the band is a parallelogram cut by two image edges, whose area is exactly
    thickness x centreline length; digitisation changes the area (up to ~6 % for thin bands at 45°,
    where pixel centres fall on the same few lines across the band).
    """
    height, width = mask.shape
    angle = np.deg2rad(angle_deg)
    start = (height / 2 + offset, width / 2 + 0.17)
    along = (np.sin(angle), np.cos(angle))  # centreline direction (row, col)
    limits = []
    for origin, step, size in zip(start, along, (height, width), strict=True):
        if abs(step) > 1e-12:
            a, b = (-0.5 - origin) / step, (size - 0.5 - origin) / step
            limits.append((min(a, b), max(a, b)))
    length = min(hi for _, hi in limits) - max(lo for lo, _ in limits)
    return float(mask.sum()) / length


def annular_arc(
    shape: tuple[int, int], inner_radius: float, thickness: float, centre: Sequence[float]
) -> np.ndarray:
    """The part inside the image of an annulus of normal thickness ``thickness`` (a curved layer)."""
    rows, cols = _grid(shape)
    radius = np.hypot(rows - centre[0], cols - centre[1])
    return (radius >= inner_radius) & (radius < inner_radius + thickness)


def touching_pairs(pairs: int = 10, diameter: float = 24.0, spacing: float = 64.0) -> tuple[np.ndarray, int]:
    """``pairs`` pairs of touching discs in a row-major lattice (the issue's "20 discs touching in pairs")."""
    columns = 3
    shape = (int(spacing * ((pairs + columns - 1) // columns) + spacing / 2), int(spacing * 2 * columns))
    centres = []
    for i in range(pairs):
        row, col = spacing * (i // columns + 0.5), spacing * (2 * (i % columns) + 0.6)
        centres += [(row + 0.3, col), (row + 0.3, col + diameter)]
    return discs(shape, centres, diameter / 2), 2 * pairs


def border_cut_discs(diameter: float = 24.0) -> tuple[np.ndarray, int, int]:
    """Whole discs of ``diameter`` plus 5 discs cut by the image border: (mask, whole, cut)."""
    shape = (200, 260)
    whole = [(50.3, 60.2), (50.3, 130.7), (50.3, 200.1), (140.6, 60.2), (140.6, 130.7), (140.6, 200.1)]
    cut = [(3.0, 95.0), (197.0, 165.0), (95.0, 2.0), (100.0, 257.0), (4.0, 256.0)]
    return discs(shape, whole + cut, diameter / 2), len(whole), len(cut)
