"""`python -m experiments bench --reference DIR`: our CS-UNet beside the paper's own code, timed in one run.

DIR is a local checkout of the paper's code (`Kalrfou/SwinT-pretrained-microscopy-models`), which the
user fetches; nothing of it is part of this repository. Its `networks/` folder is imported from DIR only,
under a private package name (so neither it nor any other `networks` package can shadow the other), and
its CNN encoder is built without pretrained weights: `networks/cnn_encoder.py` asks smp for ImageNet
weights, a download, and both nets are timed from random init, where weights cannot change the speed.

Per Swin depth, both nets are built with the same CNN encoder, depths, window, classes and input size.
Their FLOPs for one image forward + backward (`torch.utils.flop_counter`) must agree within 5 %, else the
two do different work and no ratio is printed (exit 1). Then `--repeats` rounds each time `--steps`
train steps (forward + cross-entropy + backward + Adam) of one net, then of the other; the order
alternates from round to round, so the drift of a shared machine falls on both. The ratio of a round is
the official step time over ours; printed is its median over the rounds with the min–max spread.

The official net trains as its code does: fp32 eager, `torch.optim.Adam` with torch's defaults. Ours
trains as `python -m experiments fit` trains a full-length run on this device (variant `default`: fused
Adam; bf16-mixed on a bf16 GPU or a CPU with native bf16, channels_last on a GPU; `torch.compile` where
`callbacks/fast_path.py` compiles), or in the `--variants` asked for, each timed in the same rounds. A compiled net's first step
holds the compilation: it is reported apart, never in the median. `--profile` prints the profiler's
busiest operators of both nets instead.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_modules.nets import NETS
from lightning_modules.nets.swin import resolve_depths

REPOSITORY = "https://github.com/Kalrfou/SwinT-pretrained-microscopy-models"
#: the name DIR/networks is imported under
PACKAGE = "_official_cs_unet"
FLOP_TOLERANCE = 0.05
NUM_CLASSES = 3
#: (size, batch, steps per round, warm-up) when not given: the issue's set-up, 256² batch 2 on CPU
DEFAULTS = {"cuda": (512, 8, 5, 3), "cpu": (256, 2, 1, 1)}


@dataclass
class Comparison:
    depth: str
    variant: str  # ours: a `bench` variant (`default`: what `fit` trains with)
    official_gflop: float  # one image, forward + backward
    ours_gflop: float
    official_ms: list[float]  # per round: mean step time of the round
    ours_ms: list[float]
    official_first_s: float  # the first (warm-up) step, where a compiled net compiles
    ours_first_s: float
    error: str | None = None

    @property
    def ratios(self) -> list[float]:
        return [o / u for o, u in zip(self.official_ms, self.ours_ms, strict=True)]


def load_official(root: Path) -> type[nn.Module]:
    """The `CSUnetSys` class of the checkout at `root`, imported from there under `PACKAGE`.

    smp's `get_encoder` as seen by its `networks/cnn_encoder.py` is wrapped to ask for no weights,
    which keeps the build offline.
    """
    networks = root.expanduser() / "networks"
    if not (networks / "CSUNetSys.py").is_file():
        raise SystemExit(
            f"--reference {root}: no networks/CSUNetSys.py there; pass a checkout of the paper's code "
            f"(git clone {REPOSITORY} {root})"
        )
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # an earlier DIR of this process
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(networks)]
    sys.modules[PACKAGE] = package
    try:
        cnn = importlib.import_module(f"{PACKAGE}.cnn_encoder")
        cnn.get_encoder = _without_weights(cnn.get_encoder)
        return importlib.import_module(f"{PACKAGE}.CSUNetSys").CSUnetSys
    except ModuleNotFoundError as err:
        raise SystemExit(
            f"--reference {root}: the paper's code imports {err.name!r}, which is not installed here "
            f"(pip install {err.name})"
        ) from None


def _without_weights(get_encoder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    def build(*args: object, **kwargs: object) -> nn.Module:
        return get_encoder(*args, **{**kwargs, "weights": None})

    return build


def build_pair(
    official_cls: type[nn.Module], depth: str, args: argparse.Namespace
) -> tuple[nn.Module, nn.Module]:
    """(official, ours) at one Swin depth, same CNN encoder, window, classes and input size."""
    depths = list(resolve_depths(depth))
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # its constructor prints its settings
        official = official_cls(
            img_size=args.size, num_classes=NUM_CLASSES, depths=depths, window_size=args.window,
            cnn=args.encoder, weights="imagenet",
        )  # fmt: skip
    torch.manual_seed(0)
    ours = NETS["cs_unet"](
        num_classes=NUM_CLASSES, encoder_name=args.encoder, depth=depths, window_size=args.window
    )
    return official, ours


def gflop(net: nn.Module, size: int) -> float:
    """GFLOP of one `size`² image, forward + cross-entropy + backward (a multiply-add counts 2)."""
    x = torch.randn(1, 3, size, size)
    y = torch.zeros(1, size, size, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def alternate(
    steps: dict[str, Callable[[], None]], rounds: int, per_round: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Seconds per step of each entry, per round; the order of the entries reverses every round."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            sync()
            start = time.perf_counter()
            for _ in range(per_round):
                steps[name]()
            sync()
            times[name].append((time.perf_counter() - start) / per_round)
    return times


def first_step(step: Callable[[], None], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def profile(
    official_cls: type[nn.Module], depth: str, args: argparse.Namespace, device: torch.device
) -> None:
    """`--profile`: the profiler's busiest operators of the official net's steps and of ours."""
    from experiments.bench.train_step import profile_table

    for name, step in make_steps(*build_pair(official_cls, depth, args), args, device).items():
        print(
            f"\n{'official' if name == 'official' else f'ours ({name})'} CS-UNet, {depth}: {args.steps} steps"
        )
        print(profile_table(step, args, device))


def make_steps(
    official: nn.Module, ours: nn.Module, args: argparse.Namespace, device: torch.device
) -> dict[str, Callable[[], None]]:
    """Train steps on one random batch: `official` fp32 eager, then ours in each of `args.variants`."""
    from experiments.bench.train_step import make_step, options  # train_step imports this module

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, NUM_CLASSES, (args.batch, args.size, args.size), device=device)
    steps = {"official": make_step(official, options("fp32", device), x, y)}
    for variant in args.variants:  # a copy each: layouts and compilation change a net in place
        steps[variant] = make_step(copy.deepcopy(ours), options(variant, device), x, y)
    return steps


def compare(
    official_cls: type[nn.Module], depth: str, args: argparse.Namespace, device: torch.device
) -> list[Comparison]:
    """One `Comparison` per variant of ours, all timed in the same alternating rounds."""
    official, ours = build_pair(official_cls, depth, args)
    flops = gflop(official, args.size), gflop(ours, args.size)
    results = [Comparison(depth, v, *flops, [], [], 0.0, 0.0) for v in args.variants]
    if abs(flops[1] - flops[0]) > FLOP_TOLERANCE * flops[0]:
        for result in results:
            result.error = (
                f"FLOPs differ by {flops[1] / flops[0] - 1:+.1%} (more than {FLOP_TOLERANCE:.0%}): "
                "the two nets do different work, no ratio"
            )
        return results
    steps = make_steps(official, ours, args, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    first = {name: first_step(step, sync) for name, step in steps.items()}
    for step in steps.values():
        for _ in range(args.warmup - 1):
            step()
    times = alternate(steps, args.repeats, args.steps, sync)
    for result in results:
        result.official_first_s, result.ours_first_s = first["official"], first[result.variant]
        result.official_ms = [1000 * t for t in times["official"]]
        result.ours_ms = [1000 * t for t in times[result.variant]]
    return results


def checkout_commit(root: Path) -> str:
    """The checkout's git commit (short), or `unknown` when DIR is no git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def table(results: list[Comparison]) -> str:
    lines = [
        f"{'depth':<13} {'ours':<16} {'GFLOP off.':>10} {'ours':>6} {'Δ':>6} {'off. ms':>8} {'ours ms':>8} "
        f"{'1st step s off./ours':>21}  official/ours (median, min–max)"
    ]
    for r in results:
        head = (
            f"{r.depth:<13} {r.variant:<16} {r.official_gflop:10.1f} {r.ours_gflop:6.1f} "
            f"{r.ours_gflop / r.official_gflop - 1:+6.1%}"
        )
        if r.error:
            lines.append(f"{head}  {r.error}")
            continue
        ratios = r.ratios
        lines.append(
            f"{head} {statistics.median(r.official_ms):8.0f} {statistics.median(r.ours_ms):8.0f} "
            f"{r.official_first_s:10.1f} / {r.ours_first_s:<8.1f}  "
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}, {len(ratios)} rounds)"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, device: torch.device) -> list[Comparison]:
    from experiments.bench.train_step import options

    official_cls = load_official(args.reference)
    ours = "; ".join(f"{v} = {options(v, device)}" for v in args.variants)
    print(
        f"official CS-UNet ({args.reference}, commit {checkout_commit(args.reference)}) vs ours ({ours}), "
        f"{args.encoder}, window {args.window}, {args.size}², batch {args.batch}, "
        f"{args.repeats} rounds of {args.steps} step(s) after {args.warmup} warm-up",
        flush=True,
    )
    results: list[Comparison] = []
    for depth in args.depths:
        if args.profile:
            profile(official_cls, depth, args, device)
            continue
        results += compare(official_cls, depth, args, device)
        print("\n".join(table(results[-len(args.variants) :]).splitlines()[1:]), flush=True)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", type=Path, metavar="DIR", help="checkout of the paper's code: CS-UNet side by side"
    )
    parser.add_argument("--depths", nargs="+", default=["intermediate", "original"], help="with --reference")
    parser.add_argument("--repeats", type=int, default=5, help="with --reference: alternating rounds")
    parser.add_argument("--window", type=int, default=8, help="with --reference: Swin window")


def report(args: argparse.Namespace, device: torch.device, name: str) -> int:
    """Run, print the table, write `--json`; 1 when the FLOPs of a pair differ (no ratio)."""
    results = run(args, device)
    if args.profile:
        return 0
    print(table(results))
    if args.json:
        keys = ("size", "batch", "steps", "warmup", "repeats", "window", "encoder", "variants")
        setup = {k: getattr(args, k) for k in keys}
        out = {"device": name, "torch": torch.__version__, "reference": str(args.reference), **setup}
        args.json.write_text(json.dumps(out | {"results": [asdict(r) for r in results]}, indent=2))
    return 1 if any(r.error for r in results) else 0
