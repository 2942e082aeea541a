"""`python -m experiments figure`: a PNG grid of truth and predictions from checkpoints, with per-image IoU."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

import lightning_modules.nets as nets
from experiments.reproduce import figures


class TinyNet(nn.Module):
    """A 1x1-conv stand-in segmenter (the figure tool only needs NETS[name](num_classes=...))."""

    def __init__(self, num_classes: int, bias: float = 0.0) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, num_classes, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, 0.0)
        self.head.bias.data[-1] = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def _checkpoint(path, dm, bias: float) -> None:
    net = TinyNet(dm.num_classes, bias)
    hp = {
        "net": "tiny", "net_kwargs": {"bias": bias}, "num_classes": dm.num_classes, "class_names": dm.class_names,
        "class_colors": dm.class_colors, "mean": dm.mean, "std": dm.std,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"hyper_parameters": hp, "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path
    )


def test_image_iou_and_error_colours():
    truth = np.array([[0, 1], [1, 2]])
    assert figures.image_iou(truth, truth, 3) == 1.0
    pred = np.array([[1, 1], [0, 2]])
    assert figures.image_iou(pred, truth, 3) == (1 / 3 + 1) / 2
    picture = figures.overlay(
        np.zeros((2, 2, 3), np.uint8), pred, [(0, 0, 0), (0, 255, 0), (255, 255, 0)], truth
    )
    assert (picture[0, 0] == figures.FALSE_POSITIVE).all() and (picture[1, 0] == figures.FALSE_NEGATIVE).all()


def test_figure_from_two_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nets, "NETS", {"tiny": TinyNet}, raising=False)
    dm = figures.build_datamodule("synthetic", ["size=64", "num_test=3"])
    _checkpoint(tmp_path / "a" / "checkpoints" / "best.ckpt", dm, bias=0.0)  # predicts background everywhere
    _checkpoint(tmp_path / "b" / "checkpoints" / "epoch=1-best.ckpt", dm, bias=5.0)  # predicts the last class
    output = tmp_path / "fig.png"
    argv = ["--dataset", "synthetic", "--data", "size=64", "num_test=3", "--runs", str(tmp_path / "a"),
            str(tmp_path / "b"), "--labels", "random", "biased", "--n", "2", "--output", str(output)]  # fmt: skip
    assert figures.main(argv) == 0
    out = capsys.readouterr().out
    assert "random: mean image IoU 0.00% over 2 images" in out and "biased:" in out
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]  # 4 panels wide, 2 rows high
