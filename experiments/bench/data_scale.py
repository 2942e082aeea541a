"""`python -m experiments bench --data-scale [N ...]`: memory and speed of training data as the set grows.

For each image count N (default 50, 500, 2,000) and each storage mode, a fresh Python process builds the
training pipeline of a `FolderSegmentation` set of N synthetic micrographs (`--data-scale-size`, default
1024²; grey uncompressed TIFF like most SEM software writes, index-mask PNG), runs its setup, then times
`--data-batches` batches of augmented 512² random crops (the EBC protocol) with no DataLoader workers,
and reports its own peak resident memory (`getrusage`'s `ru_maxrss`; every measurement is its own
process, so one run's peak never leaks into the next). Modes: `memory` (every sample decoded at setup),
`lazy` (decoded per sample), `cached` (lazy through the on-disk `.npy` cache, read once before timing).
In memory, RSS grows by 4 bytes per pixel per image; lazily it stays flat.

The files are made from 16 generated micrographs, each copy shifted (`np.roll`) so that no two files
are equal; they go to `--data-scale-dir` (kept for the next run) or a temporary folder (removed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from tqdm.auto import tqdm

COUNTS = (50, 500, 2000)
MODES = ("memory", "lazy")
#: distinct generated micrographs the files are shifted copies of
DISTINCT = 16
VAL_IMAGES = 2
#: training batch of the timed loader
BATCH = 4
CLASSES = [
    {"name": "matrix", "index": 0},
    {"name": "secondary", "index": 1},
    {"name": "tertiary", "index": 2},
]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class ScaleResult:
    images: int
    mode: str
    setup_s: float
    samples_per_s: float
    baseline_rss_gib: float  # peak RSS before the data set is built (Python, torch, albumentations)
    peak_rss_gib: float
    decoded_gib: float  # the header estimate of the training split's decoded size


def write_pool(folder: Path, count: int, size: int) -> list[tuple[Path, Path]]:
    """``count`` image/mask files under ``folder`` (files already there are reused)."""
    from datamodules.synthetic import generate

    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    pairs = [(images / f"m{i:05d}.tif", masks / f"m{i:05d}.png") for i in range(count)]
    missing = [i for i, (image, mask) in enumerate(pairs) if not (image.is_file() and mask.is_file())]
    bases: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in tqdm(missing, desc=f"writing {size}² micrographs", unit="pair", delay=2):
        if i % DISTINCT not in bases:
            bases[i % DISTINCT] = generate("super", 0, "train", i % DISTINCT, size)
        image, mask = bases[i % DISTINCT]
        shift = (i // DISTINCT) * 61 % size
        tifffile.imwrite(pairs[i][0], np.roll(image[..., 0], (shift, 2 * shift % size), axis=(0, 1)))
        Image.fromarray(np.roll(mask, (shift, 2 * shift % size), axis=(0, 1))).save(
            pairs[i][1], compress_level=1
        )
    return pairs


def make_set(root: Path, pairs: list[tuple[Path, Path]], count: int) -> Path:
    """A split-folder set linking the first ``count`` pairs for training and the next ones for validation."""
    for split, chosen in (("train", pairs[:count]), ("val", pairs[count : count + VAL_IMAGES])):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for image, mask in chosen:
            for source, kind in ((image, "images"), (mask, "masks")):
                link = root / split / kind / source.name
                if not link.is_symlink():
                    link.symlink_to(source)
    return root


def peak_rss_bytes() -> int:
    """This process's peak resident set (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure(root: Path, mode: str, batches: int, batch_size: int, cache_dir: Path | None) -> ScaleResult:
    """One measurement, in this process (the parent starts a fresh one for each)."""
    import torch

    from datamodules import FolderSegmentation

    torch.manual_seed(0)
    baseline = peak_rss_bytes()
    start = time.perf_counter()
    storage = "memory" if mode == "memory" else "lazy"
    cache = str(cache_dir) if mode == "cached" else None
    dm = FolderSegmentation(
        root=str(root),
        classes=CLASSES,
        storage=storage,
        cache_dir=cache,
        batch_size=batch_size,
        crop_size=512,
    )
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    if mode == "cached":  # fill the cache first, as an earlier epoch would
        for _ in dm.samples("train"):
            pass
    it = iter(dm.train_dataloader())
    next(it)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            count += len(next(it)["image"])
        except StopIteration:
            it = iter(dm.train_dataloader())
    rate = count / (time.perf_counter() - start)
    n = len(dm.samples("train"))
    return ScaleResult(
        n, mode, setup_s, rate, baseline / 2**30, peak_rss_bytes() / 2**30,
        dm.storage_plans["train"].decoded_bytes / 2**30,
    )  # fmt: skip


def run_child(root: Path, mode: str, batches: int, batch_size: int, cache_dir: Path) -> ScaleResult:
    """:func:`measure` in a fresh interpreter, so its peak RSS is its own."""
    args = [
        sys.executable, "-m", "experiments.bench.data_scale", "--root", str(root), "--mode", mode,
        "--batches", str(batches), "--batch-size", str(batch_size), "--cache-dir", str(cache_dir),
    ]  # fmt: skip
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"data-scale measurement ({mode}, {root}) failed:\n{done.stderr[-3000:]}")
    return ScaleResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def run(
    counts: list[int], modes: list[str], size: int, batches: int, batch_size: int, workdir: Path | None
) -> list[ScaleResult]:
    with tempfile.TemporaryDirectory(prefix="microseg-data-scale-") as tmp:
        base = workdir or Path(tmp)
        pairs = write_pool(base / f"pool{size}", max(counts) + VAL_IMAGES, size)
        results = []
        for count in counts:
            root = make_set(base / f"set{size}_{count}", pairs, count)
            for mode in modes:
                result = run_child(root, mode, batches, batch_size, base / f"cache{size}")
                print(
                    f"{count:>6} images {mode:<7} peak RSS {result.peak_rss_gib:6.2f} GiB "
                    f"{result.samples_per_s:7.1f} samples/s (setup {result.setup_s:.1f} s)",
                    flush=True,
                )
                results.append(result)
    return results


def table(results: list[ScaleResult]) -> str:
    """Peak RSS and samples/s per image count and mode, and the RSS growth over the smallest count."""
    smallest = {r.mode: r.peak_rss_gib for r in results if r.images == min(x.images for x in results)}
    head = f"{'images':>6} {'mode':<7} {'decoded GiB':>11} {'peak RSS GiB':>12} {'growth':>7} {'samples/s':>9} {'setup s':>8}"
    lines = [head]
    for r in results:
        growth = r.peak_rss_gib - smallest.get(r.mode, r.peak_rss_gib)
        lines.append(
            f"{r.images:>6} {r.mode:<7} {r.decoded_gib:11.2f} {r.peak_rss_gib:12.2f} {growth:+7.2f} "
            f"{r.samples_per_s:9.1f} {r.setup_s:8.1f}"
        )
    lines.append(f"(growth: peak RSS minus the same mode's at {min(r.images for r in results)} images)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`bench`'s --data-scale options (the timed batches are `bench --data-batches`)."""
    parser.add_argument(
        "--data-scale", nargs="*", type=int, help=f"instead: data memory/speed at N images {COUNTS}"
    )
    parser.add_argument(
        "--data-scale-modes", nargs="+", default=list(MODES), choices=("memory", "lazy", "cached")
    )
    parser.add_argument(
        "--data-scale-size", type=int, default=1024, help="side of the --data-scale micrographs"
    )
    parser.add_argument(
        "--data-scale-dir", type=Path, help="keep the --data-scale files here (default: temporary)"
    )


def bench(args: argparse.Namespace) -> int:
    """`bench --data-scale`: the table, and the rows in ``--json`` when given."""
    counts = args.data_scale or list(COUNTS)
    results = run(
        counts, args.data_scale_modes, args.data_scale_size, args.data_batches, BATCH, args.data_scale_dir
    )
    print(table(results))
    if args.json:
        report = {"size": args.data_scale_size, "batch": BATCH, "batches": args.data_batches}
        args.json.write_text(json.dumps({**report, "data_scale": [asdict(r) for r in results]}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The child side (``python -m experiments.bench.data_scale``): one measurement, as a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.data_scale")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--mode", choices=("memory", "lazy", "cached"), required=True)
    parser.add_argument("--batches", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.root, args.mode, args.batches, args.batch_size, args.cache_dir)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
