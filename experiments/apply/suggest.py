"""`python -m experiments suggest --ckpt best.ckpt --input unlabelled/ --n 5`: which micrographs to label next.

Each image is prepared exactly as `predict` prepares it (same reader, intensity rule and resampling,
`experiments.apply.preprocess`) and segmented through the same overlapping windows; how it is scored
and how a diverse choice is made is in `experiments.apply.selection`. The ranking is printed and
written to ``--output`` (default ``suggestions/``): ``suggestions.csv`` (every image, ranked, with its
scores and the chosen image it resembles most) and ``suggestions.png`` (a thumbnail sheet of the
proposal: each micrograph beside its uncertainty map). Nothing is overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from datamodules.pixel_size import Calibration, parse_pixel_size
from experiments.apply.predict import input_files, resolve_device
from experiments.apply.preprocess import prepare
from experiments.apply.selection import BatchNormDistance, Candidate, Pick, descriptor, select
from lightning_modules.checkpoint import load_segmenter
from lightning_modules.inference import segment

OUTPUTS = ("suggestions.csv", "suggestions.png")
SHEET_TILE = 192


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments suggest", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="segmentation checkpoint written by `fit`")
    parser.add_argument("--input", required=True, type=Path, help="a folder of unlabelled micrographs")
    parser.add_argument("--n", type=int, default=5, help="how many images to propose")
    parser.add_argument(
        "--output", type=Path, default=Path("suggestions"), help="folder for the CSV and sheet"
    )
    parser.add_argument(
        "--diversity", type=float, default=1.0, help="weight of the similarity penalty (0: by score only)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier ranking in --output")
    parser.add_argument(
        "--pixel-size",
        help="side of one pixel with its unit, e.g. 4.2nm (default: from each file's metadata)",
    )
    parser.add_argument("--tile", type=int, default=512, help="window side in network pixels")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (auto: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def score_image(
    net: torch.nn.Module, meta, path: Path, args: argparse.Namespace, device
) -> tuple[Candidate, np.ndarray, np.ndarray]:
    """One image's candidate record, its micrograph (uint8 RGB) and its uncertainty map (network grid)."""
    pixel = parse_pixel_size(args.pixel_size)
    prepared = prepare(path, meta, meta.intensity, Calibration(pixel, "--pixel-size") if pixel else None)
    distance = BatchNormDistance(net)
    with distance.recording():
        _, uncertainty = segment(
            net, prepared.tensor, meta.num_classes, tile=args.tile, batch_size=args.batch_size, device=device
        )
    candidate = Candidate(path.name, float(uncertainty.mean()), distance.value(), descriptor(prepared.image))
    return candidate, prepared.image, uncertainty


def write_csv(picks: list[Pick], n: int, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "rank",
                "image",
                "proposed",
                "score",
                "uncertainty",
                "unfamiliarity",
                "most_similar_chosen",
                "similarity",
            ]
        )
        for rank, pick in enumerate(picks, start=1):
            c = pick.candidate
            unfamiliar = "" if c.unfamiliarity is None else f"{c.unfamiliarity:.4f}"
            writer.writerow(
                [
                    rank,
                    c.name,
                    rank <= n,
                    f"{c.score:.4f}",
                    f"{c.uncertainty:.4f}",
                    unfamiliar,
                    pick.closest or "",
                    f"{pick.similarity:.3f}",
                ]
            )


def write_sheet(
    picks: list[Pick], images: dict[str, np.ndarray], maps: dict[str, np.ndarray], path: Path
) -> None:
    """One row per proposed image: the micrograph | its uncertainty map (inferno), with a caption."""
    from matplotlib import colormaps

    font = ImageFont.load_default(size=14)
    rows = []
    for rank, pick in enumerate(picks, start=1):
        name = pick.candidate.name
        micrograph = Image.fromarray(images[name]).resize((SHEET_TILE, SHEET_TILE))
        heat = (colormaps["inferno"](maps[name])[..., :3] * 255).astype(np.uint8)
        row = Image.new("RGB", (2 * SHEET_TILE, SHEET_TILE + 22), "white")
        row.paste(micrograph, (0, 22))
        row.paste(Image.fromarray(heat).resize((SHEET_TILE, SHEET_TILE)), (SHEET_TILE, 22))
        caption = (
            f"{rank}. {name}  score {pick.candidate.score:.3f}  uncertainty {pick.candidate.uncertainty:.3f}"
        )
        ImageDraw.Draw(row).text((4, 3), caption, fill="black", font=font)
        rows.append(row)
    sheet = Image.new("RGB", (2 * SHEET_TILE, sum(r.height for r in rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * row.height))
    sheet.save(path)


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; give a folder for suggestions.csv and suggestions.png")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{out} holds an earlier ranking ({', '.join(existing)}); choose another --output or pass --overwrite"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.n < 1:
            raise ValueError(f"--n {args.n}: propose at least one image")
        parse_pixel_size(args.pixel_size)
        device = resolve_device(args.device)
        files = input_files(args.input)
        _check_output(args.output, args.overwrite)
        net, meta = load_segmenter(args.ckpt)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net.to(device)
    candidates, images, maps, failures = [], {}, {}, []
    for path in tqdm(files, desc="images", unit="img", disable=args.quiet):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                candidate, images[path.name], maps[path.name] = score_image(net, meta, path, args, device)
                candidates.append(candidate)
            except Exception as err:  # one unreadable file must not stop the ranking; it is listed below
                failures.append(str(err) if str(err).startswith(str(path)) else f"{path}: {err}")
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
    if not candidates:
        print(f"error: no image in {args.input} could be read", file=sys.stderr)
        return 2
    picks = select(candidates, args.n, args.diversity)
    args.output.mkdir(parents=True, exist_ok=True)
    write_csv(picks, args.n, args.output / "suggestions.csv")
    write_sheet(picks[: args.n], images, maps, args.output / "suggestions.png")
    without_bn = candidates[0].unfamiliarity is None
    print(
        f"label next ({'by uncertainty: the network has no BatchNorm' if without_bn else 'by uncertainty and unfamiliarity'}):"
    )
    for rank, pick in enumerate(picks[: args.n], start=1):
        c = pick.candidate
        near = (
            f", like {pick.closest} ({pick.similarity:.2f})" if pick.closest and pick.similarity > 0.5 else ""
        )
        print(f"{rank:>3}. {c.name}  score {c.score:.3f} (uncertainty {c.uncertainty:.3f}){near}")
    print(f"wrote {args.output / 'suggestions.csv'} and {args.output / 'suggestions.png'}")
    for message in failures:
        print(f"FAILED {message}", file=sys.stderr)
    return 1 if failures else 0
