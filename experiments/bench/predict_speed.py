"""`python -m experiments bench --predict [SIZE ...]`: megapixels/s and peak memory of `predict` on huge micrographs.

For each model and size, a synthetic 8-bit micrograph (discs on a noisy matrix) is written strip by
strip as a TIFF (the generator never holds the image), and a fresh interpreter runs the real
``predict --no-measure`` on it with a randomly initialised network of that architecture (speed and
memory do not depend on the weights). Each run is its own process, so its peak RSS (`getrusage`) is
its own. Beside each run: the *overlap-implied minimum*, the time of one forward pass per window of
the engine's grid at the net's own throughput on one batch of windows (measured in the same process
after a warm-up), i.e. every pixel once times the overlap factor, with nothing for reading, blending
or writing; ``ratio`` = predict's time / that minimum (the target is at most 1.5 on CPU). ``model MB``
is the peak RSS after loading the net and running that batch: the model's working set, which the
target for memory adds to three times the mask (1 byte a pixel).
"""

from __future__ import annotations

import argparse
import inspect
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
import torch

from lightning_modules.nets import NETS
from lightning_modules.window_grid import WindowGrid

SIZES = (2048, 8192)
MODELS = ("unet", "cs_unet:intermediate")
REPO = Path(__file__).resolve().parents[2]
CLASS_NAMES = ["matrix", "secondary", "tertiary"]


@dataclass
class PredictResult:
    model: str
    size: int
    seconds: float
    megapixels_per_s: float
    minimum_seconds: float
    ratio: float
    windows: int
    overlap_factor: float  # windows x window area / image area
    peak_rss_mb: float
    model_rss_mb: float
    mask_mb: float


def write_micrograph(path: Path, size: int, band: int = 256) -> None:
    """A ``size`` x ``size`` uint8 TIFF of bright discs (radius 30, every 200 px) on noise, band by band."""

    def bands():
        rng = np.random.default_rng(0)
        cols = (np.arange(size) % 200 - 100) ** 2
        for top in range(0, size, band):
            rows = (np.arange(top, min(top + band, size)) % 200 - 100) ** 2
            disc = rows[:, None] + cols[None, :] <= 30**2
            noise = rng.normal(0, 8, disc.shape)
            yield (np.where(disc, 180, 60) + noise).clip(0, 255).astype(np.uint8)

    tifffile.imwrite(path, bands(), shape=(size, size), dtype=np.uint8, rowsperstrip=band)


def net_spec(spec: str, encoder: str) -> tuple[str, dict]:
    """`name[:depth]` -> (NETS name, constructor arguments): the smp ``encoder`` where the net takes one."""
    name, _, depth = spec.partition(":")
    if name not in NETS:
        raise SystemExit(f"unknown model {name!r} in --predict-models; known: {', '.join(NETS)}")
    params = inspect.signature(NETS[name]).parameters
    kwargs = {"encoder_name": encoder} if "encoder_name" in params else {}
    return name, kwargs | ({"depth": depth} if depth else {})


def write_checkpoint(path: Path, name: str, kwargs: dict) -> None:
    """A checkpoint `predict` loads, of a randomly initialised ``NETS[name](**kwargs)``."""
    torch.manual_seed(0)
    net = NETS[name](num_classes=len(CLASS_NAMES), **kwargs)
    hp = {
        "net": name,
        "net_kwargs": kwargs,
        "num_classes": len(CLASS_NAMES),
        "class_names": CLASS_NAMES,
        "class_colors": [(0, 0, 0), (0, 0, 255), (255, 0, 0)],
        "class_kinds": ["matrix", "particles", "particles"],
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "intensity": "percentile",
        "scale": 1.0,
        "pixel_size_nm": None,
    }
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": hp, "state_dict": state}, path)


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure(ckpt: Path, image: Path, out: Path, device: str, tile: int, overlap: float, batch: int) -> dict:
    """The child side: the net's window throughput, then the real predict, in this process."""
    from experiments.apply import predict
    from lightning_modules.checkpoint import load_segmenter

    net, _ = load_segmenter(ckpt)
    net.to(device)
    windows = torch.randn(batch, 3, tile, tile, device=device)
    with torch.inference_mode():
        net(windows)  # warm-up
        _sync(device)
        start = time.perf_counter()
        net(windows)
        _sync(device)
        per_window = (time.perf_counter() - start) / batch
    model_rss = peak_rss_bytes()
    argv = ["--ckpt", str(ckpt), "--input", str(image), "--output", str(out), "--no-measure", "--quiet"]
    argv += ["--device", device, "--tile", str(tile), "--overlap", str(overlap), "--batch-size", str(batch)]
    start = time.perf_counter()
    code = predict.main(argv)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"predict exited with {code}")
    return {
        "seconds": seconds,
        "per_window": per_window,
        "peak_rss": peak_rss_bytes(),
        "model_rss": model_rss,
    }


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_one(spec: str, size: int, args: argparse.Namespace, folder: Path) -> PredictResult:
    """Write the image and checkpoint (kept in ``folder``), run predict in a fresh process, compare."""
    image = folder / f"synthetic_{size}.tif"
    if not image.exists():
        write_micrograph(image, size)
    ckpt = folder / f"{spec.replace(':', '_')}.ckpt"
    name, kwargs = net_spec(spec, args.encoder)
    write_checkpoint(ckpt, name, kwargs)
    out = folder / f"out_{spec.replace(':', '_')}_{size}"
    child = [
        sys.executable, "-m", "experiments.bench.predict_speed", "--ckpt", str(ckpt), "--image", str(image),
        "--out", str(out), "--device", args.device, "--tile", str(args.predict_tile),
        "--overlap", str(args.predict_overlap), "--batch-size", str(args.predict_batch),
    ]  # fmt: skip
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(child, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"predict of {image} with {spec} failed:\n{done.stderr[-3000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    grid = WindowGrid.of(size, size, args.predict_tile, args.predict_overlap)
    minimum = grid.count * got["per_window"]
    return PredictResult(
        model=spec + (f" ({kwargs['encoder_name']})" if "encoder_name" in kwargs else ""),
        size=size,
        seconds=got["seconds"],
        megapixels_per_s=size * size / 1e6 / got["seconds"],
        minimum_seconds=minimum,
        ratio=got["seconds"] / minimum,
        windows=grid.count,
        overlap_factor=grid.count * grid.win_h * grid.win_w / size**2,
        peak_rss_mb=got["peak_rss"] / 1e6,
        model_rss_mb=got["model_rss"] / 1e6,
        mask_mb=size * size / 1e6,
    )


def table(results: list[PredictResult]) -> str:
    lines = [
        "| model | image | s | MP/s | minimum s | ratio | windows (overlap x) | peak RSS MB | model MB | mask MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.size}² | {r.seconds:.1f} | {r.megapixels_per_s:.3f} | {r.minimum_seconds:.1f} "
            f"| {r.ratio:.2f} | {r.windows} ({r.overlap_factor:.2f}) | {r.peak_rss_mb:.0f} | "
            f"{r.model_rss_mb:.0f} | {r.mask_mb:.0f} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`bench`'s --predict options (the smp encoder is `bench --encoder`, the device `--device`)."""
    parser.add_argument(
        "--predict", nargs="*", type=int, help=f"instead: predict MP/s and memory at sizes {SIZES}"
    )
    parser.add_argument("--predict-models", nargs="+", default=list(MODELS), help="name[:depth]")
    parser.add_argument("--predict-tile", type=int, default=512, help="window side")
    parser.add_argument("--predict-overlap", type=float, default=0.25, help="window overlap")
    parser.add_argument("--predict-batch", type=int, default=4, help="windows per forward")
    parser.add_argument("--predict-dir", type=Path, help="keep the generated images and outputs here")


def bench(args: argparse.Namespace) -> int:
    """`bench --predict`: the table, and the rows in ``--json`` when given."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.predict_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for spec in args.predict_models:
            for size in args.predict or SIZES:
                results.append(run_one(spec, size, args, folder))
                print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The child side (``python -m experiments.bench.predict_speed``): one run, as a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.predict_speed")
    for name in ("--ckpt", "--image", "--out"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    got = measure(args.ckpt, args.image, args.out, args.device, args.tile, args.overlap, args.batch_size)
    print(json.dumps(got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
