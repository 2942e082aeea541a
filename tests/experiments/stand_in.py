"""Stand-in network and checkpoint for the predict/measure/export tests (import the fixture from here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_modules.nets import NETS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: what `fit` records by default: the data set's intensity rule, no resize, no known pixel size
FIT_PREPROCESSING = {"intensity": "percentile", "scale": 1.0, "pixel_size_nm": None}


class BrightnessNet(nn.Module):
    """Classes by local brightness (dark → 0, mid → 1, bright → 2): a 3×3 mean, then a 1×1 conv.

    Its receptive field is 3 px, so tiled and whole-image inference must agree; it is a real
    `nn.Module` with parameters, so it round-trips through a checkpoint and ONNX like a trained net.
    """

    def __init__(self, num_classes: int = 3, width: int = 4) -> None:
        super().__init__()
        self.smooth = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Conv2d(width, num_classes, 1)
        with torch.no_grad():
            self.smooth.weight.fill_(1 / 27)
            self.smooth.bias.zero_()
            self.head.weight.zero_()
            self.head.weight[1:, 0] = torch.tensor([4.0, 8.0])[: num_classes - 1, None, None]
            self.head.bias.copy_(torch.tensor([0.0, 0.0, -8.0])[:num_classes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.smooth(x))


def write_checkpoint(
    path: Path,
    net: nn.Module,
    name: str,
    class_names: list[str],
    net_kwargs: dict | None = None,
    **preprocessing: object,
) -> Path:
    """A checkpoint with the hyperparameters of docs/design.md and the net under the `net.` prefix.

    ``preprocessing`` adds ``intensity``, ``scale``, ``pixel_size_nm``; without them the checkpoint
    is like one written before they were recorded.
    """
    hp = {
        "net": name,
        "net_kwargs": net_kwargs or {},
        "num_classes": len(class_names),
        "class_names": class_names,
        "class_colors": [(0, 0, 0), (0, 0, 255), (255, 0, 0)][: len(class_names)],
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        **preprocessing,
    }
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": hp, "state_dict": state}, path)
    return path


@pytest.fixture
def brightness_ckpt(tmp_path, monkeypatch) -> Path:
    """A checkpoint of BrightnessNet (matrix, secondary, tertiary), registered in NETS as `brightness`."""
    torch.set_num_threads(1)
    monkeypatch.setitem(NETS, "brightness", BrightnessNet)
    names = ["matrix", "secondary", "tertiary"]
    return write_checkpoint(
        tmp_path / "brightness.ckpt", BrightnessNet(3), "brightness", names, **FIT_PREPROCESSING
    )
