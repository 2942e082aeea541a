"""`python -m experiments models`: every network of NETS with its parameters and GFLOPs at 512².

Nets are built on the meta device (no memory, no init cost) and counted with torch's FlopCounterMode,
so the table takes seconds on a CPU. GFLOPs are multiply-accumulates / 1e9, the convention of the Swin
and CS-UNet papers (Swin-T at 224²: 4.5).
"""

from __future__ import annotations

import argparse
import inspect

import torch
from torch.utils.flop_counter import FlopCounterMode

from lightning_modules.nets import NETS


def variants(encoder: str) -> list[tuple[str, dict]]:
    """(name, kwargs) for every NETS entry; both Swin depths where the net has a Swin encoder."""
    rows = []
    for name, cls in NETS.items():
        params = inspect.signature(cls).parameters
        base = {"encoder_name": encoder} if "encoder_name" in params else {}
        depths = ("original", "intermediate") if "depth" in params else (None,)
        rows += [(name, {**base, **({"depth": d} if d else {})}) for d in depths]
    return rows


def count(name: str, kwargs: dict, size: int, num_classes: int) -> tuple[float, float]:
    """(parameters in millions, GMACs for one `size`² image)."""
    with torch.device("meta"):
        net = NETS[name](num_classes=num_classes, **kwargs).eval()
        x = torch.empty(1, 3, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return sum(p.numel() for p in net.parameters()) / 1e6, counter.get_total_flops() / 2e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments models", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=512, help="square input side for the GFLOPs (default 512)"
    )
    parser.add_argument("--encoder", default="resnet34", help="smp encoder of the CNN-based nets")
    parser.add_argument("--num-classes", type=int, default=3, help="output classes (74 for the classifiers)")
    args = parser.parse_args(argv)
    print(f"{'model':<16} {'encoder':<16} {'swin depth':<13} {'params (M)':>10} {f'GFLOPs@{args.size}²':>13}")
    for name, kwargs in variants(args.encoder):
        classes = 74 if name.endswith("_classifier") else args.num_classes
        params, gflops = count(name, kwargs, args.size, classes)
        print(
            f"{name:<16} {kwargs.get('encoder_name', '-'):<16} {kwargs.get('depth', '-'):<13} {params:>10.2f} {gflops:>13.1f}"
        )
    return 0
