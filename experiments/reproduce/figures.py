"""Prediction figures like the paper's Figs. 6-8: test images, ground truth, and each run's prediction.

    python -m experiments figure --dataset super4 --runs outputs/super4/A outputs/super4/B \
        --labels imagenet microlite [--n 4] [--split test] [--data root=data] --output fig.png

Each row is one test image: the micrograph, its ground truth, then one panel per run. A prediction
panel shows correctly segmented foreground in its class colour and the errors on top: **false positive**
(yellow: a foreground class predicted where the truth differs) and **false negative** (magenta: foreground
of the truth predicted as background); neither colour is a class colour of the NASA sets. The caption gives the image's IoU (mean over foreground classes
present in truth or prediction, the same definition as the headline `iou`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

FALSE_POSITIVE = np.array([255, 210, 0], np.uint8)
FALSE_NEGATIVE = np.array([255, 0, 255], np.uint8)
DATAMODULES = {
    **{f"super{i}": f"Super{i}" for i in range(1, 5)},
    **{f"ebc{i}": f"EBC{i}" for i in range(1, 4)},
    "synthetic": "Synthetic",
}


def find_checkpoint(run: Path) -> Path:
    """The run's best checkpoint (`checkpoints/best.ckpt`, else the best one found), or a run's .ckpt file."""
    from experiments.reproduce.run import best_checkpoint

    if run.is_file():
        return run
    ckpt = best_checkpoint(run) if run.is_dir() else None
    if ckpt is None:
        raise SystemExit(
            f"no checkpoint in {run}: pass a run folder written by `python -m experiments run` or a .ckpt"
        )
    return ckpt


def image_iou(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    """Mean IoU over the foreground classes present in truth or prediction (1.0 when neither has any)."""
    ious = []
    for c in range(1, num_classes):
        union = np.logical_or(pred == c, truth == c).sum()
        if union:
            ious.append(np.logical_and(pred == c, truth == c).sum() / union)
    return float(np.mean(ious)) if ious else 1.0


def overlay(image: np.ndarray, mask: np.ndarray, colors: list, truth: np.ndarray | None = None) -> np.ndarray:
    """Class colours over the micrograph (alpha 0.45); with `truth`, FP yellow and FN magenta on top."""
    out = image.astype(np.float32).copy()
    palette = np.array(colors, np.float32)
    fg = mask > 0
    out[fg] = 0.55 * out[fg] + 0.45 * palette[mask[fg]]
    if truth is not None:
        out[(mask != truth) & (mask > 0)] = FALSE_POSITIVE
        out[(mask != truth) & (mask == 0)] = FALSE_NEGATIVE
    return out.clip(0, 255).astype(np.uint8)


def predict(net: torch.nn.Module, image: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return net(image[None]).argmax(1)[0].cpu().numpy()


def build_datamodule(dataset: str, data_args: list[str]):
    """The dataset's DataModule (`datamodules.Super4`, ...) with `key=value` constructor arguments."""
    import yaml

    import datamodules

    if dataset not in DATAMODULES:
        raise SystemExit(f"--dataset {dataset!r}: choose one of {', '.join(DATAMODULES)}")
    kwargs = {}
    for item in data_args:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--data {item!r}: write key=value, e.g. root=data or scale=0.5")
        kwargs[key] = yaml.safe_load(value)
    return getattr(datamodules, DATAMODULES[dataset])(**kwargs)


def make_figure(
    dm, runs: list[Path], labels: list[str], n: int, split: str, output: Path
) -> list[list[float]]:
    """Draw the grid into `output` (PNG); returns the IoU of each image (rows) for each run (columns)."""
    from lightning_modules.checkpoint import load_segmenter

    nets = [load_segmenter(find_checkpoint(run))[0] for run in runs]
    dataset = dm.dataset(split)
    samples = dm.samples(split)[:n]
    if not samples:
        raise SystemExit(f"{dm.dataset_name} has no images in split {split!r}")
    colors = list(dm.class_colors)
    fig, axes = plt.subplots(
        len(samples), 2 + len(nets), figsize=(3 * (2 + len(nets)), 3 * len(samples)), squeeze=False
    )
    ious = []
    for row, sample in enumerate(samples):
        image = dataset[row]["image"]
        truth = sample.mask.astype(np.int64)
        panels = [(sample.image, sample.name), (overlay(sample.image, truth, colors), "ground truth")]
        ious.append([])
        for net, label in zip(nets, labels, strict=True):
            pred = predict(net, image)
            ious[-1].append(image_iou(pred, truth, dm.num_classes))
            panels.append(
                (overlay(sample.image, pred, colors, truth), f"{label}: IoU {100 * ious[-1][-1]:.1f}%")
            )
        for ax, (picture, caption) in zip(axes[row], panels, strict=True):
            ax.imshow(picture)
            ax.set_title(caption, fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{dm.dataset_name} {split}: false positive yellow, false negative magenta", fontsize=10)
    legend = [(name, np.array(color)) for name, color in zip(dm.class_names[1:], colors[1:], strict=True)]
    legend += [("false positive", FALSE_POSITIVE), ("false negative", FALSE_NEGATIVE)]
    handles = [Patch(color=color / 255, label=name) for name, color in legend]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))  # room for the legend row
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return ious


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments figure", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help=f"one of {', '.join(DATAMODULES)}")
    parser.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders (or .ckpt files)")
    parser.add_argument(
        "--labels", nargs="+", default=None, help="one caption per run (default: folder names)"
    )
    parser.add_argument("--n", type=int, default=4, help="number of test images (rows)")
    parser.add_argument("--split", default="test", help="test or test_ood")
    parser.add_argument(
        "--data", nargs="*", default=[], help="DataModule arguments key=value (root=..., scale=...)"
    )
    parser.add_argument("--output", type=Path, default=Path("figure.png"))
    args = parser.parse_args(argv)
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"--labels has {len(labels)} names for {len(args.runs)} runs; give one per run")
    dm = build_datamodule(args.dataset, args.data)
    ious = make_figure(dm, args.runs, labels, args.n, args.split, args.output)
    for label, column in zip(labels, zip(*ious, strict=True), strict=True):
        print(f"{label}: mean image IoU {100 * np.mean(column):.2f}% over {len(column)} images")
    print(f"written: {args.output}")
    return 0
