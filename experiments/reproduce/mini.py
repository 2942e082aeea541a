"""Miniature reproduction of the paper's claim on CPU: does microscopy pretraining of Swin-T help CS-UNet?

    python -m experiments reproduce-mini [--quick] [--runs outputs/reproduce-mini]
        [--microlite ../shared/data/microlite-mini.tar.gz] [--nasa data]

1. Pretrain the Swin-T classifier (intermediate depth) on a MicroLite-style ImageFolder tree
   (microlite-mini: 300 images, 10 classes) with `python -m experiments fit --config microlite.yaml`.
2. Train CS-UNet (ResNet-18 CNN encoder, intermediate Swin-T) on Super-3 (one-shot; `test` and the
   differently prepared `test_ood`) and Super-4 (out of distribution), from (a) random init and
   (b) the MicroLite-pretrained Swin-T (`weights=microlite`, the checkpoint of step 1), 3 seeds each,
   each run through `python -m experiments run` (fit + test of the best checkpoint, results.json).
3. Print mean ± std test IoU per dataset/split and init (`tables.render`), and write it to
   `<runs>/tables/reproduce_mini.{md,csv}`.

Everything goes through the same CLI and configs as the full experiments, scaled down to fit about 90
minutes on 2 CPU cores (`PLAN`): micrographs at a quarter of their resolution in both steps (MicroLite
256² tiles and Super images shown at 64²/128²), 64² training crops, 30 epochs of 4 steps.
Runs that already have a results.json are skipped, so an interrupted reproduction resumes.
`--quick` is a smoke test of the same pipeline (minutes, meaningless numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tqdm import tqdm

from experiments.reproduce.run import run_dir
from experiments.reproduce.tables import Layout, render

SHARED = Path(os.environ.get("MICROSEG_SHARED", "../shared"))
INITS = {"none": "random init", "microlite": "MicroLite Swin-T"}
ROWS = [("super3", "test"), ("super3", "test_ood"), ("super4", "test")]
LAYOUT = Layout("CS-UNet (ResNet-18 + intermediate Swin-T) test IoU (%), mean ± std over seeds",
                "", ("dataset", "split"), ("init",))  # fmt: skip

#: the scaled-down schedule: full (about 90 min on 2 cores) and quick (a smoke test)
PLAN = {
    "full": {  # about 5 min per CS-UNet run and 10 min of pretraining on 2 idle cores (estimated)
        "seeds": [0, 1, 2],
        "datasets": ["super3", "super4"],
        "pretrain": ["--data.init_args.tile_size=256", "--data.init_args.image_size=64",
                     "--data.init_args.batch_size=32", "--data.init_args.max_tiles_per_image=2",
                     "--trainer.max_epochs=8"],
        "segment": ["--data.init_args.scale=0.25", "--data.init_args.crop_size=64", "--data.init_args.batch_size=4",
                    "--trainer.max_epochs=30"],
        "repeats": {"super3": 16, "super4": 4},  # 16 training crops (4 steps) per epoch on both sets
    },
    "quick": {
        "seeds": [0],
        "datasets": ["super3"],
        "pretrain": ["--data.init_args.image_size=64", "--data.init_args.batch_size=8",
                     "--data.init_args.max_tiles_per_image=1", "--trainer.max_epochs=1",
                     "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"],
        "segment": ["--data.init_args.scale=0.25", "--data.init_args.crop_size=64", "--data.init_args.batch_size=2",
                    "--trainer.max_epochs=1", "--trainer.limit_train_batches=1",
                    "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1"],
        "repeats": {"super3": 2, "super4": 1},
    },
}  # fmt: skip
COMMON = ["--data.init_args.num_workers=0", "--trainer.accelerator=cpu", "--trainer.devices=1"]


def unpack(source: Path, dest: Path, inner: str) -> Path:
    """A folder as is, or a .tar.gz extracted once into `dest`; returns `<dest>/<inner>` for an archive."""
    if source.is_dir():
        return source
    if not source.is_file():
        raise SystemExit(
            f"{source} not found: pass a folder or a .tar.gz (e.g. {SHARED}/data/{inner}.tar.gz)"
        )
    if not (dest / inner).is_dir():
        with tarfile.open(source) as tar:
            tar.extractall(dest, filter="data")
    return dest / inner


def ensure_nasa(root: Path, archive: Path) -> Path:
    """The folder holding Super3/ and Super4/, unpacked from `archive` when it is missing."""
    if (root / "Super3").is_dir() and (root / "Super4").is_dir():
        return root
    if not archive.is_file():
        raise SystemExit(
            f"no Super3/Super4 under {root} and no {archive}: run `make data` or pass --nasa DIR"
        )
    command = [
        sys.executable,
        "-m",
        "experiments",
        "data",
        "download",
        "--from",
        str(archive),
        "--root",
        str(root),
    ]
    subprocess.run(command, check=True)
    return root


def pretrain(microlite: Path, runs: Path, args: list[str]) -> Path:
    """Fit the Swin-T classifier on `microlite`; returns its best checkpoint (reused when present)."""
    folder = runs / "microlite"
    found = sorted(folder.rglob("best*.ckpt"))
    if not found:
        command = [sys.executable, "-m", "experiments", "fit", "--config", "microlite.yaml",
                   f"--data.init_args.root={microlite}", *COMMON, *args]  # fmt: skip
        subprocess.run(command, check=True, env={**os.environ, "MICROSEG_OUTPUTS": str(runs)})
        found = sorted(folder.rglob("best*.ckpt"))
    if not found:
        raise SystemExit(f"pretraining wrote no best*.ckpt under {folder}")
    return found[-1]


def segment(plan: dict, runs: Path, nasa: Path, checkpoint: Path) -> list[tuple[Path, int]]:
    """Every CS-UNet run of the plan (skipping finished ones); returns the failures."""
    grid = [(d, w, s) for d in plan["datasets"] for w in INITS for s in plan["seeds"]]
    env = {**os.environ, "MICROSEG_MICROLITE": str(checkpoint)}
    failures = []
    for dataset, weights, seed in tqdm(grid, desc="CS-UNet runs", unit="run"):
        params = {"dataset": dataset, "model": "cs_unet", "encoder": "resnet18", "weights": weights,
                  "swin_depth": "intermediate", "seed": seed}  # fmt: skip
        folder = run_dir(params, runs)
        if (folder / "results.json").is_file():
            continue
        command = [sys.executable, "-m", "experiments", "run", *(f"--{k}={v}" for k, v in params.items()),
                   f"--runs_dir={runs}", f"--data.init_args.root={nasa}",
                   f"--data.init_args.train_repeats={plan['repeats'][dataset]}", *COMMON, *plan["segment"]]  # fmt: skip
        code = subprocess.run(command, env=env).returncode
        if code:
            failures.append((folder, code))
    return failures


def records(plan: dict, runs: Path) -> list[dict]:
    """One record per run and reported split, IoU in % (the input of `tables.render`)."""
    out = []
    for dataset, split in ROWS:
        for weights in INITS:
            for seed in plan["seeds"]:
                path = run_dir({"dataset": dataset, "model": "cs_unet", "encoder": "resnet18", "weights": weights,
                                "swin_depth": "intermediate", "seed": seed}, runs) / "results.json"  # fmt: skip
                metrics = json.loads(path.read_text())["metrics"].get(split, {}) if path.is_file() else {}
                if "iou" in metrics:
                    out.append({"dataset": dataset, "split": split, "init": INITS[weights], "seed": seed,
                                "value": 100 * metrics["iou"]})  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments reproduce-mini", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a minutes-long smoke test of the same pipeline")
    parser.add_argument(
        "--runs", type=Path, default=None, help="output folder (default outputs/reproduce-mini[-quick])"
    )
    parser.add_argument("--microlite", type=Path, default=SHARED / "data" / "microlite-mini.tar.gz")
    parser.add_argument("--nasa", type=Path, default=Path(os.environ.get("MICROSEG_DATA", "data")))
    parser.add_argument("--nasa-archive", type=Path, default=SHARED / "data" / "nasa-benchmark.tar.gz")
    args = parser.parse_args(argv)
    plan = PLAN["quick" if args.quick else "full"]
    runs = args.runs or Path("outputs") / ("reproduce-mini-quick" if args.quick else "reproduce-mini")
    runs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    microlite = unpack(args.microlite, Path("data"), "microlite-mini")
    nasa = ensure_nasa(args.nasa, args.nasa_archive)
    checkpoint = pretrain(microlite, runs, plan["pretrain"])
    print(f"MicroLite Swin-T checkpoint: {checkpoint}", flush=True)
    failures = segment(plan, runs, nasa, checkpoint)

    rows = [(d, s) for d, s in ROWS if d in plan["datasets"]]
    grid = [{"dataset": d, "split": s, "init": label} for d, s in rows for label in INITS.values()]
    found = records(plan, runs)
    markdown, csv_rows = render(LAYOUT, found, grid)
    minutes = (time.monotonic() - started) / 60
    markdown += f"\n\n{len(found)} of {len(grid) * len(plan['seeds'])} results; this invocation took {minutes:.1f} min."
    print(markdown)
    (runs / "tables").mkdir(exist_ok=True)
    (runs / "tables" / "reproduce_mini.md").write_text(markdown + "\n")
    if csv_rows:
        with (runs / "tables" / "reproduce_mini.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
            writer.writeheader()
            writer.writerows(csv_rows)
    for folder, code in failures:
        print(f"FAILED (exit {code}): {folder}", file=sys.stderr)
    return 1 if failures or not found else 0
