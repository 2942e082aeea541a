"""`python -m experiments measure-accuracy` (`make measurements-doc`): regenerate docs/measurements.md.

Runs every grid of `experiments.bench.measurement_accuracy`, measures a real Super1 ground-truth mask
with and without the watershed split (and draws the split into docs/images/), and fills the page's
prose (`measurements_template.md`, beside this file) with the numbers. ``--quick`` runs small grids:
it checks the script, not the numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from datamodules.io import DataError, default_root, read_mask
from datamodules.masks import decode_super
from experiments.apply.particles import SPLIT_DEPTH, SPLIT_MIN_AREA, label_particles
from experiments.bench import measurement_accuracy as acc

SUPER1_MASK = Path("Super1") / "test_annot" / "spot2_0d_0_mask.tif"
TEMPLATE = Path(__file__).with_name("measurements_template.md")
PICTURE = "measure_split_super1.png"
FULL = {
    "diameters": (12, 16, 24, 32, 48),
    "overlaps": (0.0, 0.05, 0.1, 0.15, 0.2),
    "repeats": 4,
    "minors": (4, 6, 8, 12, 20),
    "ratios": (1.0, 1.5, 2, 3, 4, 5),
    "thicknesses": (6, 10, 20, 40),
    "angles": (0, 10, 20, 30, 45, 60, 80),
    "offsets": (0.0, 0.25, 0.5, 0.71),
    "arcs": ((40, 10), (60, 20), (100, 30), (150, 15)),
    "depths": (0.5, 1.0, 1.5, 2.0),
    "min_areas": (0, 20, 50),
}
QUICK = FULL | {
    "diameters": (16,),
    "overlaps": (0.0, 0.1),
    "repeats": 1,
    "minors": (8,),
    "ratios": (1.0, 3),
    "thicknesses": (10,),
    "angles": (0, 30),
    "offsets": (0.0,),
    "arcs": ((60, 20),),
    "depths": (1.0,),
    "min_areas": (20,),
}
#: compact triangles are only counted up to this overlap (beyond, they have one distance maximum)
TRIANGLE_LIMIT = 0.1


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f} %"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def share_right(rows: list[dict]) -> float:
    """Fraction of clusters split into the right count: pairs, chains, triangles up to TRIANGLE_LIMIT."""
    rows = [r for r in rows if r["kind"] != "triangle" or r["overlap"] <= TRIANGLE_LIMIT]
    return sum(r["right"] for r in rows) / sum(r["trials"] for r in rows)


def split_section(grid: dict) -> str:
    rows = acc.cluster_grid(grid["diameters"], grid["overlaps"], grid["repeats"])
    plain = acc.cluster_grid(grid["diameters"], grid["overlaps"], grid["repeats"], split=False)
    body = [
        [
            r["kind"],
            f"{100 * r['overlap']:.0f} %",
            f"{r['right']}/{r['trials']}",
            f"{p['right']}/{p['trials']}",
        ]
        + [pct(r["mean_error"]), pct(r["worst_error"])]
        for r, p in zip(rows, plain, strict=True)
    ]
    header = ["cluster", "overlap", "right count", "with --no-split", "mean diameter error", "worst"]
    sizes = ", ".join(f"{d:g}" for d in grid["diameters"])
    return (
        f"Disc diameters {sizes} px, {grid['repeats']} random orientations and sub-pixel positions each; "
        "the diameter error is each piece's equivalent diameter against its disc's. Pairs and chains up to "
        f"20 % overlap and triangles up to {100 * TRIANGLE_LIMIT:.0f} %: **{100 * share_right(rows):.1f} %** "
        "split into the right count.\n\n" + table(header, body)
    )


def parameter_section(grid: dict, mask: np.ndarray | None) -> str:
    """The split parameters: success on the clusters, cuts of single particles, Super1 counts."""
    settings = [(d, SPLIT_MIN_AREA) for d in grid["depths"]]
    settings += [(SPLIT_DEPTH, a) for a in grid["min_areas"] if a != SPLIT_MIN_AREA]
    settings += [(min(grid["depths"]), 0)] if min(grid["depths"]) != SPLIT_DEPTH else []
    repeats = max(1, grid["repeats"] // 2)
    body = []
    for depth, min_area in settings:
        rows = acc.cluster_grid(grid["diameters"], grid["overlaps"], repeats, depth, min_area)
        cut = acc.oversplit_shapes(depth, min_area)
        super1 = "–" if mask is None else int(label_particles(mask == 1, True, depth, min_area).max())
        body.append(
            [f"{depth:g}", min_area, f"{100 * share_right(rows):.1f} %"]
            + [f"{cut[k]}/{cut[k + '_total']}" for k in ("ellipses", "rings", "rectangles", "nubbed discs")]
            + [super1]
        )
    header = ["depth (px)", "min area (px)", "clusters right", "ellipses cut", "rings cut", "rectangles cut"]
    header += ["nubbed discs cut"]
    return table([*header, "Super1 secondary count"], body)


def ellipse_section(grid: dict) -> str:
    rows = acc.ellipse_grid(grid["minors"], grid["ratios"], grid["repeats"])
    body = [[f"{r['minor_axis']:g}", r["shapes"], pct(r["mean_error"]), pct(r["worst_error"])] for r in rows]
    return table(["minor axis (px)", "ellipses", "mean aspect-ratio error", "worst"], body)


def band_section(grid: dict) -> str:
    rows = acc.band_grid(grid["thicknesses"], grid["angles"], grid["offsets"])
    body = [
        [f"{r['thickness']:g}", f"{r['angle']:g}°", pct(r["vs_digitised"]), pct(r["vs_nominal"])]
        + [pct(r["vertical_extent"])]
        for r in rows
    ]
    header = ["thickness (px)", "tilt", "mean vs digitised", "mean vs nominal", "vertical extent vs nominal"]
    return table(header, body)


def arc_section(grid: dict) -> str:
    rows = acc.arc_grid(grid["arcs"])
    body = [
        [f"{r['inner_radius']:g}", f"{r['thickness']:g}", r["arc"], r["positions"]]
        + [pct(r["mean_error"]), pct(r["median_error"])]
        for r in rows
    ]
    header = ["inner radius (px)", "thickness (px)", "arc", "positions", "mean error", "median error"]
    return table(header, body)


def issue_section() -> str:
    case = acc.issue_cases()
    band, pairs, border = case["band"], case["pairs"], case["border"]
    split, merged = pairs["default"], pairs["no_split"]
    body = [
        [
            "band 30 px thick, tilted 30°",
            "thickness 30 px",
            f"mean {band['thickness_mean']:.1f}, median {band['thickness_median']:.1f} px",
            f"vertical extent: mean {band['extent_mean']:.1f}, median {band['extent_median']:.1f} px",
        ],
        [
            f"{pairs['true_count']} discs of 24 px touching in pairs",
            f"{pairs['true_count']} particles of 24 px, aspect ratio 1",
            f"{split['count']} of {split['diameter']:.1f} px, aspect ratio {split['aspect_ratio']:.2f}",
            f"`--no-split`: {merged['count']} of {merged['diameter']:.1f} px, "
            f"aspect ratio {merged['aspect_ratio']:.2f}",
        ],
        [
            f"{border['whole']} whole discs of 24 px + {border['cut']} cut by the border",
            "mean diameter 24 px",
            f"{border['default']['count']} counted, {border['default']['in_statistics']} in the statistics, "
            f"mean {border['default']['diameter']:.1f} px",
            f"`--include-edge-particles`: mean {border['with_edges']['diameter']:.1f} px",
        ],
    ]
    return table(["case (issue 18)", "truth", "measured (defaults)", "the old figure / option"], body)


def uncertainty_section() -> str:
    c = acc.uncertainty_checks()
    body = [
        ["within-image standard error, 16 fields of set fractions", c["se_expected"], c["se_measured"]],
        ["95 % t-interval half-width of 5 values (t = 2.776)", c["t_expected"], c["t_half_width"]],
        [
            "discs on a 20 px lattice, 40 cut by the frame: number per px²",
            c["density_expected"],
            c["density_measured"],
        ],
    ]
    return table(
        ["check", "known answer", "measured"], [[name, f"{a:.6f}", f"{b:.6f}"] for name, a, b in body]
    )


def draw_split(binary: np.ndarray, split: np.ndarray, path: Path) -> None:
    """Two panels, pixel for pixel: the connected components, and the same with the watershed's cuts in red."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from scipy import ndimage as ndi
    from skimage.color import label2rgb
    from skimage.measure import label
    from skimage.segmentation import find_boundaries

    whole = label(binary, connectivity=2)
    picture = label2rgb(whole, bg_label=0, bg_color=(1, 1, 1))
    cuts = find_boundaries(split, mode="thick") & binary & ~find_boundaries(whole, mode="thick")
    with_cuts = picture.copy()
    with_cuts[ndi.binary_dilation(cuts) & binary] = (0.85, 0.0, 0.0)
    height, width = binary.shape
    fig, axes = plt.subplots(1, 2, figsize=(2 * width / 100 + 0.4, height / 100 + 0.5), dpi=100)
    titles = (f"connected components: {whole.max()}", f"after the split: {split.max()} (cuts in red)")
    for ax, image, title in zip(axes, (picture, with_cuts), titles, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def super1_section(mask: np.ndarray | None, picture: Path) -> str:
    if mask is None:
        return "Not measured: the Super1 mask was not found (`make data`, or pass `--super1-mask`)."
    whole = int(label_particles(mask == 1, split=False).max())
    split = label_particles(mask == 1)
    draw_split(mask == 1, split, picture)
    return (
        f"NASA Super1 test mask `{SUPER1_MASK.name}` (ground truth, 512 x 512), secondary γ′: **{whole}** "
        f"connected particles with `--no-split`, **{int(split.max())}** after the watershed split "
        f"(defaults).\n\n![Super1 secondary γ′: connected components and the split](images/{picture.name})\n"
        "*Left: connected components, one colour each; right: where the split cuts them (red).*"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments measure-accuracy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--output", type=Path, default=Path("docs/measurements.md"), help="the page to write")
    parser.add_argument(
        "--super1-mask", type=Path, default=default_root() / SUPER1_MASK, help="a Super1 mask"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small grids: checks the script, not the numbers"
    )
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    started = time.time()
    try:
        mask = (
            decode_super(read_mask(args.super1_mask), args.super1_mask)
            if args.super1_mask.is_file()
            else None
        )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sections = {
        "split": split_section(grid),
        "parameters": parameter_section(grid, mask),
        "ellipses": ellipse_section(grid),
        "bands": band_section(grid),
        "arcs": arc_section(grid),
        "issue": issue_section(),
        "uncertainty": uncertainty_section(),
        "super1": super1_section(mask, args.output.parent / "images" / PICTURE),
    }
    command = " ".join(["python -m experiments measure-accuracy", *(sys.argv[1:] if argv is None else argv)])
    text = TEMPLATE.read_text().format(
        **sections,
        command=command,
        depth=SPLIT_DEPTH,
        min_area=SPLIT_MIN_AREA,
        ratios=", ".join(f"{r:g}" for r in grid["ratios"]),
        seconds=f"{time.time() - started:.0f}",
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output} in {time.time() - started:.0f} s")
    return 0
