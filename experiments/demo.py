"""`make demo`: train a real segmenter in a few CPU minutes, test it, and show what it sees.

Uses NASA's Super1 when it is in the data root or can be unpacked from ``../shared``; otherwise
synthetic Super-like micrographs, so the demo always runs. Writes the run (checkpoints, W&B offline
run, results.json) and ``demo_panel.png`` (image | truth | prediction per test image) to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

from datamodules.download import fetch, verify
from datamodules.io import default_root

REPO = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = (
    Path(os.environ.get("MICROSEG_SHARED", REPO.parent / "shared")) / "data/nasa-benchmark.tar.gz"
)


def find_super1(root: Path) -> bool:
    """True when ``root/Super1`` is complete, unpacking it from ../shared first if that copy exists."""
    if not verify(root / "Super1"):
        return True
    if SHARED_ARCHIVE.is_file():
        print(f"unpacking Super1 from {SHARED_ARCHIVE} into {root}")
        fetch(["super1"], root, str(SHARED_ARCHIVE))
        return True
    return False


def per_image_iou(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """Mean foreground IoU of one image (classes absent from both truth and prediction are left out)."""
    scores = []
    for c in range(1, num_classes):
        union = np.logical_or(truth == c, pred == c).sum()
        if union:
            scores.append(np.logical_and(truth == c, pred == c).sum() / union)
    return float(np.mean(scores)) if scores else 1.0


def save_panel(ckpt: Path, datamodule, out: Path) -> Path:
    """One figure: a row per test image with image, ground truth, prediction and the image's IoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import Patch

    from callbacks.overlays import colorize
    from lightning_modules.checkpoint import load_segmenter

    net, meta = load_segmenter(ckpt)
    colors = meta.class_colors or [(0, 0, 0), (0, 0, 255), (255, 0, 0)]
    samples = datamodule.test_dataloader()
    loader = samples[0] if isinstance(samples, list) else samples
    rows = []
    with torch.inference_mode():
        for batch in loader:
            pred = net(batch["image"]).argmax(1)
            for image, mask, p, name in zip(batch["image"], batch["mask"], pred, batch["name"], strict=True):
                rgb = image * torch.tensor(meta.std).view(3, 1, 1) + torch.tensor(meta.mean).view(3, 1, 1)
                rgb = (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
                rows.append((name, rgb, mask.numpy(), p.numpy()))
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for ax_row, (name, rgb, truth, pred) in zip(axes, rows, strict=True):
        iou = per_image_iou(truth, pred, meta.num_classes)
        for ax, picture, title in zip(
            ax_row,
            (rgb, colorize(truth, colors), colorize(pred, colors)),
            (name, "ground truth", f"prediction (IoU {iou:.2f})"),
            strict=True,
        ):
            ax.imshow(picture)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    handles = [
        Patch(color=np.array(c) / 255, label=n) for n, c in zip(meta.class_names, colors, strict=False)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = out / "demo_panel.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments demo", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="data root holding Super1/ (default: data/)")
    parser.add_argument("--output", type=Path, default=Path("outputs/demo"), help="run folder")
    parser.add_argument(
        "--max-time", default=None, help="training budget DD:HH:MM:SS (default: the config's)"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic micrographs even if Super1 exists"
    )
    args = parser.parse_args(argv)

    from experiments.cli import cli_main

    root = args.root or default_root()
    real = not args.synthetic and find_super1(root)
    config = "demo_super1.yaml" if real else "demo.yaml"
    print(f"demo: training on {'NASA Super1' if real else 'synthetic Super-like micrographs'} ({config})")
    previous = args.output / "checkpoints"
    if previous.is_dir():  # the demo's own earlier run: fit refuses to replace a run it is not told to
        print(f"demo: replacing the previous demo run's checkpoints in {previous}")
        shutil.rmtree(previous)
    common = ["--config", config, f"--trainer.default_root_dir={args.output}"]
    if real:
        common.append(f"--data.init_args.root={root}")
    fit_args = ["fit", *common] + ([f"--trainer.max_time={args.max_time}"] if args.max_time else [])
    cli = cli_main(fit_args)
    ckpt = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    cli = cli_main(["test", *common, f"--ckpt_path={ckpt}"])

    results = json.loads((args.output / "results.json").read_text())
    test = results["metrics"]["test"]
    print("\nper-class test IoU:")
    for name in results["class_names"][1:]:
        print(f"  {name:<12} {test[f'iou_{name}']:.3f}")
    print(f"  {'mean (fg)':<12} {test['iou']:.3f}    NASA IoU {test['nasa_iou']:.3f}")
    panel = save_panel(Path(ckpt), cli.datamodule, args.output)
    print(f"\npanel: {panel}\nrun folder: {args.output}")
    return 0
