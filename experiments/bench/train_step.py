"""`python -m experiments bench`: train-step throughput of every network, per speed-up variant.

A train step is forward + loss + backward + Adam step on random data of the real shapes. Each model is
timed in five variants, each against the fp32 eager baseline measured in the same run:
`fp32` (eager, torch's default Adam: what the paper's code runs), `bf16` (bf16-mixed autocast),
`bf16+cl` (+ channels_last weights and input), `bf16+cl+compile` (+ `torch.compile`; a compile error is
reported in the table, not raised) and `default`: what `python -m experiments fit` trains a full-length
run with on this device (`callbacks/fast_path.py`: bf16-mixed and channels_last on a bf16 GPU; on CPU
bf16-mixed where it has native bf16, else fp32 and `torch.compile`; fused Adam).
`--profile` prints `torch.profiler`'s busiest operators of a few steps of each model instead.
Timing: `--warmup` steps first (compilation happens there), then `--steps` steps between two device
synchronisations. Peak memory is CUDA's `max_memory_allocated` (CPU: not measured).
On CPU the defaults shrink to 128², batch 2, 2 steps and leave out the variants that compile, `default`
included (inductor's C++ build takes minutes per model there; ask for them with `--variants`), so the
whole table takes minutes.
Then the data pipeline (`experiments.bench.data_loading`): augmented samples/s of Super1 and EBC1 with 0, 2 and
N DataLoader workers, beside the fastest model's consumption rate (`--data-sets` to choose, `none` to skip).
`--data-scale [N ...]` measures instead how memory and samples/s grow with the size of a training set,
in memory vs read lazily (`experiments.bench.data_scale`). `--predict [SIZE ...]` measures `predict`'s
megapixels/s and peak memory on huge synthetic micrographs (`experiments.bench.predict_speed`).
`--reference DIR` instead times our CS-UNet beside the paper's own code (`experiments.bench.reference`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity

from callbacks.fast_path import channels_last_by_default, compiles_long_runs, default_precision
from experiments.bench import data_loading as bench_data
from experiments.bench import data_scale, predict_speed, reference
from lightning_modules.nets import NETS
from lightning_modules.segmentation import FUSED_ADAM_DEVICES

#: models of issue 8, as `name[:swin depth]`
MODELS = (
    "cs_unet:intermediate",
    "cs_unet:original",
    "swin_unet",
    "hiformer",
    "transdeeplab",
    "unet",
    "unetplusplus",
    "swin_classifier",
)
VARIANTS = ("fp32", "bf16", "bf16+cl", "bf16+cl+compile", "default")
#: (size, batch, steps, warmup) when not given on the command line
DEFAULTS = {"cuda": (512, 8, 20, 5), "cpu": (128, 2, 2, 1)}


@dataclass
class Result:
    model: str
    variant: str
    images_per_s: float | None
    step_ms: float | None
    peak_mem_gib: float | None
    ratio: float | None  # images_per_s / the fp32 baseline of the same model in this run
    error: str | None


def build(spec: str, encoder: str, num_classes: int) -> nn.Module:
    """`name[:depth]` -> a fresh net (smp encoder `encoder` where the net has a CNN encoder)."""
    name, _, depth = spec.partition(":")
    if name not in NETS:
        raise SystemExit(f"unknown model {name!r} in --models; known: {', '.join(NETS)}")
    params = inspect.signature(NETS[name]).parameters
    kwargs = {"encoder_name": encoder} if "encoder_name" in params else {}
    if depth:
        kwargs["depth"] = depth
    return NETS[name](num_classes=num_classes, **kwargs)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Options:
    bf16: bool
    channels_last: bool
    compile: bool
    fused_adam: bool


def options(variant: str, device: torch.device) -> Options:
    """What a variant name switches on; `default` asks the training code itself."""
    if variant == "default":
        precision = default_precision(device.type)
        return Options(
            bf16=precision == "bf16-mixed",
            channels_last=channels_last_by_default(device),
            compile=compiles_long_runs(device, precision),
            fused_adam=device.type in FUSED_ADAM_DEVICES,
        )
    return Options(variant.startswith("bf16"), "+cl" in variant, variant.endswith("+compile"), False)


def train_step(spec: str, variant: str, args: argparse.Namespace, device: torch.device) -> Callable[[], None]:
    """One model's train step in one variant, on random data of the real shapes, ready to call."""
    classify = spec.startswith("swin_classifier")
    num_classes = 74 if classify else 3
    torch.manual_seed(0)
    net = build(spec, args.encoder, num_classes)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    shape = (args.batch,) if classify else (args.batch, args.size, args.size)
    y = torch.randint(0, num_classes, shape, device=device)
    return make_step(net, options(variant, device), x, y)


def make_step(net: nn.Module, opts: Options, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """forward + cross-entropy + backward + Adam step of `net` on the batch `(x, y)`, as `opts` say."""
    net = net.to(x.device).train()
    if opts.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, fused=opts.fused_adam or None)
    step_fn = torch.compile(net) if opts.compile else net
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if opts.bf16 else nullcontext()

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(step_fn(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_variant(
    spec: str, variant: str, args: argparse.Namespace, device: torch.device
) -> tuple[float, float | None]:
    """(seconds per step, peak GiB) of one model in one variant."""
    step = train_step(spec, variant, args, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return seconds, peak


def run(args: argparse.Namespace, device: torch.device) -> list[Result]:
    results = []
    for spec in args.models:
        baseline = None
        for variant in args.variants:
            try:
                seconds, peak = time_variant(spec, variant, args, device)
            except Exception as err:  # a variant that fails (compile, bf16 kernels) is reported, not fatal
                message = (
                    f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                )
                results.append(Result(spec, variant, None, None, None, None, message[:300]))
                print(f"{spec:<22} {variant:<16} failed: {message[:120]}", flush=True)
                continue
            rate = args.batch / seconds
            baseline = rate if variant == "fp32" else baseline
            ratio = rate / baseline if baseline else None
            results.append(Result(spec, variant, rate, 1000 * seconds, peak, ratio, None))
            print(f"{spec:<22} {variant:<16} {rate:8.2f} img/s", flush=True)
    return results


def profile(args: argparse.Namespace, device: torch.device) -> None:
    """`torch.profiler` tables of `--steps` train steps per model and variant, busiest operators first."""
    for spec in args.models:
        for variant in args.variants:
            step = train_step(spec, variant, args, device)
            print(f"\n{spec} {variant}: {args.steps} steps")
            print(profile_table(step, args, device))


def profile_table(step: Callable[[], None], args: argparse.Namespace, device: torch.device) -> str:
    """Operators by self time over `args.steps` calls of `step` after `args.warmup` (at least 1)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for _ in range(max(args.warmup, 1)):
        step()
    _sync(device)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        _sync(device)
    return prof.key_averages().table(sort_by=sort, row_limit=args.profile_rows)


def table(results: list[Result]) -> str:
    lines = [f"{'model':<22} {'variant':<16} {'img/s':>9} {'ms/step':>9} {'peak GiB':>9} {'vs fp32':>8}"]
    for r in results:
        if r.error:
            lines.append(f"{r.model:<22} {r.variant:<16} failed: {r.error[:80]}")
            continue
        peak = f"{r.peak_mem_gib:9.2f}" if r.peak_mem_gib is not None else f"{'-':>9}"
        ratio = f"{r.ratio:7.2f}x" if r.ratio is not None else f"{'-':>8}"
        lines.append(f"{r.model:<22} {r.variant:<16} {r.images_per_s:9.2f} {r.step_ms:9.1f} {peak} {ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments bench", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="name[:original|intermediate]")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        help="default: all (CPU: those that do not compile; --reference: default)",
    )
    parser.add_argument("--size", type=int, help="square input side (512 on CUDA, 128 on CPU)")
    parser.add_argument("--batch", type=int, help="images per step (8 on CUDA, 2 on CPU)")
    parser.add_argument("--steps", type=int, help="timed steps (20 on CUDA, 2 on CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (5 on CUDA, 1 on CPU)")
    parser.add_argument("--encoder", default="resnet50", help="smp encoder of the CNN-based nets")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (torch's default when not given)")
    parser.add_argument("--data-sets", nargs="+", default=list(bench_data.SETS), help="or `none`")
    parser.add_argument("--data-workers", nargs="+", type=int, default=bench_data.default_workers())
    parser.add_argument("--data-batches", type=int, default=20, help="batches timed per loader")
    data_scale.add_arguments(parser)
    predict_speed.add_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--profile", action="store_true", help="print profiler tables instead of timing")
    parser.add_argument("--profile-rows", type=int, default=25, help="operators per profiler table")
    reference.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.data_scale is not None:
        return data_scale.bench(args)
    if args.predict is not None:
        return predict_speed.bench(args)
    if args.threads:
        torch.set_num_threads(
            args.threads
        )  # on a shared CPU, fewer threads than cores avoid oversubscription
    device = torch.device(args.device)
    size, batch, steps, warmup = (reference.DEFAULTS if args.reference else DEFAULTS)[
        "cuda" if device.type == "cuda" else "cpu"
    ]
    args.size, args.batch = args.size or size, args.batch or batch
    args.steps, args.warmup = args.steps or steps, args.warmup if args.warmup is not None else warmup
    cheap = [v for v in VARIANTS if device.type == "cuda" or not options(v, device).compile]
    args.variants = args.variants or (["default"] if args.reference else cheap)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"
    )
    print(f"device {name}, {args.size}², batch {args.batch}, {args.steps} steps after {args.warmup} warm-up")
    if args.reference:
        return reference.report(args, device, name)
    if args.profile:
        profile(args, device)
        return 0
    results = run(args, device)
    print(table(results))
    sets = [] if args.data_sets == ["none"] else args.data_sets
    data = bench_data.run(sets, args.data_workers, args.batch, args.data_batches)
    rates = [r.images_per_s for r in results if r.variant == "fp32" and r.images_per_s]
    if data:
        print(bench_data.table(data, max(rates, default=None)))
    if args.json:
        report = {
            "device": name,
            "torch": torch.__version__,
            "size": args.size,
            "batch": args.batch,
            "steps": args.steps,
            "warmup": args.warmup,
            "results": [asdict(r) for r in results],
            "data": [asdict(r) for r in data],
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if any(r.variant == "fp32" and r.error for r in results) else 0
