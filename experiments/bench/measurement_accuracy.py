"""The error of every `measure` quantity on shapes with a known answer (docs/measurements.md's numbers).

Each function runs one grid of `experiments.bench.shapes` through the same code `measure` uses and
returns table rows; `experiments.bench.measurement_doc` writes them into docs/measurements.md.
"""

from __future__ import annotations

from itertools import product

import numpy as np
from skimage.measure import label

from experiments.apply.layers import axis_extent, layer_profile
from experiments.apply.measurements import MeasureSettings, measure_mask
from experiments.apply.particles import SPLIT_DEPTH, SPLIT_MIN_AREA, label_particles, particle_rows
from experiments.apply.uncertainty import number_density, t_interval, within_image_error
from experiments.bench import shapes

NAMES, KINDS = ["matrix", "particles"], ["matrix", "particles"]


def _errors(errors: list[float]) -> dict:
    return {
        "mean_error": float(np.mean(errors)) if errors else None,
        "worst_error": float(max(errors, key=abs)) if errors else None,
    }


def cluster_grid(
    diameters: tuple[float, ...],
    overlaps: tuple[float, ...],
    repeats: int,
    depth: float = SPLIT_DEPTH,
    min_area: int = SPLIT_MIN_AREA,
    split: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Touching pairs, chains and compact triangles of discs: right count, and diameter error of the pieces."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, overlap in product(shapes.CLUSTERS, overlaps):
        right, errors = 0, []
        for diameter, _ in product(diameters, range(repeats)):
            size = int(5 * diameter + 40)
            centres = shapes.cluster_centres(
                kind, diameter / 2, overlap, rng.uniform(0, 1, 2) + size / 2, rng
            )
            labels = label_particles(
                shapes.discs((size, size), centres, diameter / 2), split, depth, min_area
            )
            if labels.max() == len(centres):
                right += 1
                errors += [r["equivalent_diameter_px"] / diameter - 1 for r in particle_rows(labels)]
        trials = len(diameters) * repeats
        rows.append({"kind": kind, "overlap": overlap, "trials": trials, "right": right} | _errors(errors))
    return rows


def oversplit_shapes(depth: float = SPLIT_DEPTH, min_area: int = SPLIT_MIN_AREA, seed: int = 1) -> dict:
    """Single particles that must stay whole (ellipses up to 5:1, rings, rotated rectangles, discs with
    small nubs on their outline, as on a rough predicted mask): how many are cut."""
    rng = np.random.default_rng(seed)
    cases: dict[str, list[np.ndarray]] = {"ellipses": [], "rings": [], "rectangles": [], "nubbed discs": []}
    for minor, ratio in product((4, 6, 8, 12, 20), (1.0, 1.5, 2, 3, 4, 5)):
        if minor * ratio <= 100:
            angle = rng.uniform(0, np.pi)
            cases["ellipses"].append(shapes.ellipse((240, 240), minor * ratio, minor, angle, (120.3, 119.6)))
    for outer, width in product((20, 30, 45, 70), (6, 10, 18)):
        cases["rings"].append(shapes.annular_arc((200, 200), outer - width, width, (100.3, 99.7)))
    rows, cols = np.mgrid[:200, :200].astype(np.float64) - np.array([100.2, 99.6])[:, None, None]
    for side, ratio, angle in product((10, 20, 40), (1, 2), (0.0, 0.3, 0.7)):
        u, v = cols * np.cos(angle) + rows * np.sin(angle), -cols * np.sin(angle) + rows * np.cos(angle)
        cases["rectangles"].append((np.abs(u) <= side * ratio / 2) & (np.abs(v) <= side / 2))
    for radius in (10, 15, 20, 30):
        angles = rng.uniform(0, 2 * np.pi, 3)
        nubs = [(100.3 + (radius + 2.2) * np.sin(a), 99.8 + (radius + 2.2) * np.cos(a)) for a in angles]
        cases["nubbed discs"].append(
            shapes.discs((200, 200), [(100.3, 99.8)], radius) | shapes.discs((200, 200), nubs, 2.2)
        )
    out = {}
    for name, masks in cases.items():
        out[name] = sum(int(label_particles(m, True, depth, min_area).max() > 1) for m in masks)
        out[f"{name}_total"] = len(masks)
    return out


def ellipse_grid(
    minors: tuple[float, ...], ratios: tuple[float, ...], repeats: int, seed: int = 2
) -> list[dict]:
    """Aspect ratio (major/minor of the moment ellipse) of ellipses at random angles and phases."""
    rng = np.random.default_rng(seed)
    rows = []
    for minor in minors:
        errors = []
        for ratio, _ in product(ratios, range(repeats)):
            size = int(2 * minor * ratio + 30)
            centre = rng.uniform(0, 1, 2) + size / 2
            mask = shapes.ellipse((size, size), minor * ratio, minor, rng.uniform(0, np.pi), centre)
            (row,) = particle_rows(label(mask, connectivity=2))
            errors.append(row["aspect_ratio"] / ratio - 1)
        rows.append({"minor_axis": 2 * minor, "shapes": len(errors)} | _errors(errors))
    return rows


def band_grid(
    thicknesses: tuple[float, ...], angles: tuple[float, ...], offsets: tuple[float, ...]
) -> list[dict]:
    """Straight bands at several tilts, worst sub-pixel phase: mean thickness vs digitised and nominal."""
    rows = []
    for thickness, angle in product(thicknesses, angles):
        digitised, nominal, extent = [], [], []
        for offset in offsets:
            mask = shapes.tilted_band((240, 320) if angle < 50 else (320, 240), thickness, angle, offset)
            mean = layer_profile(mask).thickness.mean()
            digitised.append(mean / shapes.band_digitised_thickness(mask, angle, offset) - 1)
            nominal.append(mean / thickness - 1)
            columns = axis_extent(mask)[0]
            extent.append(columns[columns > 0].mean() / thickness - 1)
        rows.append(
            {"thickness": thickness, "angle": angle, "vs_digitised": max(digitised, key=abs)}
            | {"vs_nominal": max(nominal, key=abs), "vertical_extent": float(np.mean(extent))}
        )
    return rows


def arc_grid(cases: tuple[tuple[float, float], ...]) -> list[dict]:
    """Annular arcs (inner radius, thickness) crossing the image, and half rings ending inside it."""
    rows = []
    for inner, thickness in cases:
        for where, centre, clip in (
            ("crosses the image", (320.0, 180.0), None),
            ("ends inside", (150.0, 200.0), 150),
        ):
            mask = shapes.annular_arc((300, 400), inner, thickness, centre)
            if clip is not None:
                mask[clip:] = False
            profile = layer_profile(mask).thickness
            rows.append(
                {"inner_radius": inner, "thickness": thickness, "arc": where, "positions": int(profile.size)}
                | {
                    "mean_error": profile.mean() / thickness - 1,
                    "median_error": np.median(profile) / thickness - 1,
                }
            )
    return rows


def _particles(mask: np.ndarray, settings: MeasureSettings) -> dict:
    return measure_mask(mask.astype(np.int64), NAMES, KINDS, settings=settings)["summary"]["particles"][
        "particles"
    ]


def issue_cases() -> dict:
    """The three cases of issue 18, each with the old figure or option beside the new default."""
    band = shapes.tilted_band((300, 400), 30, 30)
    extent = axis_extent(band)[0]
    extent = extent[extent > 0]
    thickness = layer_profile(band).thickness
    out: dict = {
        "band": {"thickness_mean": thickness.mean(), "thickness_median": np.median(thickness)}
        | {"extent_mean": extent.mean(), "extent_median": np.median(extent)}
    }
    pairs, true_count = shapes.touching_pairs()
    out["pairs"] = {"true_count": true_count}
    for name, settings in (("default", MeasureSettings()), ("no_split", MeasureSettings(split=False))):
        entry = _particles(pairs, settings)
        out["pairs"][name] = {"count": entry["count"], "diameter": entry["equivalent_diameter_px"]["mean"]}
        out["pairs"][name]["aspect_ratio"] = entry["aspect_ratio"]["mean"]
    border, whole, cut = shapes.border_cut_discs()
    out["border"] = {"whole": whole, "cut": cut}
    for name, settings in (
        ("default", MeasureSettings()),
        ("with_edges", MeasureSettings(include_edge_particles=True)),
    ):
        entry = _particles(border, settings)
        out["border"][name] = {"count": entry["count"], "in_statistics": entry["count_in_statistics"]}
        out["border"][name]["diameter"] = entry["equivalent_diameter_px"]["mean"]
    return out


def uncertainty_checks() -> dict:
    """Each error bar on a case whose answer is known by construction."""
    fractions = np.random.default_rng(3).uniform(0.1, 0.6, 16)
    mask = np.zeros((64, 64), np.int64)
    for field, fraction in enumerate(
        fractions
    ):  # field i: its first round(fraction x 256) pixels are class 1
        tile = np.zeros(256, np.int64)
        tile[: int(round(fraction * 256))] = 1
        r, c = divmod(field, 4)
        mask[16 * r : 16 * r + 16, 16 * c : 16 * c + 16] = tile.reshape(16, 16)
    exact = np.round(fractions * 256) / 256
    values = [0.20, 0.25, 0.22, 0.27, 0.21]
    # discs on a 20 px lattice (1/400 per px²), centred on the image edges too, so 40 of them are cut
    lattice = shapes.discs((200, 200), [(r, c) for r in range(0, 201, 20) for c in range(0, 201, 20)], 5)
    rows = particle_rows(label(lattice, connectivity=2))
    cut = sum(r["touches_border"] for r in rows)
    return {
        "se_measured": within_image_error(mask, NAMES, fields=4)["particles"]["standard_error"],
        "se_expected": float(exact.std(ddof=1) / 4),
        "t_half_width": t_interval(values)["half_width"],
        "t_expected": 2.7764451 * np.std(values, ddof=1) / np.sqrt(5),  # t(0.975, 4) from tables
        "density_measured": number_density(len(rows) - cut, cut, lattice.size),
        "density_expected": 1 / 400,
    }
