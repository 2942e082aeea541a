"""Rebuild a trained segmentation network from its checkpoint alone (no config needed).

`predict`, `export` and `figure` use this; the contract on the checkpoint's hyperparameters is in
docs/design.md ("Checkpoints").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

REQUIRED_HPARAMS = ("net", "num_classes", "class_names", "mean", "std")


@dataclass
class SegmenterMeta:
    """What a checkpoint says about its network's input and output."""

    net: str
    num_classes: int
    class_names: list[str]
    class_colors: list[tuple[int, int, int]]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    net_kwargs: dict = field(default_factory=dict)
    #: ``matrix`` / ``particles`` / ``layer`` per class; empty for checkpoints written before kinds were stored
    class_kinds: list[str] = field(default_factory=list)


def load_segmenter(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, SegmenterMeta]:
    """Load a segmentation checkpoint written by `python -m experiments fit` into an eval-mode network."""
    from lightning_modules.nets import NETS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: pass the .ckpt written by `fit`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many kinds for a bad file
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({err})") from err
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    missing = [k for k in REQUIRED_HPARAMS if k not in hp]
    if missing or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a microseg segmentation checkpoint (missing {missing or ['state_dict']}); "
            "use a .ckpt saved by `python -m experiments fit` with a segmentation model"
        )
    if hp["net"] not in NETS:
        raise ValueError(f"{path}: unknown network {hp['net']!r}; known: {', '.join(sorted(NETS))}")
    meta = SegmenterMeta(
        net=hp["net"],
        num_classes=int(hp["num_classes"]),
        class_names=list(hp["class_names"]),
        class_colors=[tuple(c) for c in hp.get("class_colors") or []],
        mean=tuple(hp["mean"]),
        std=tuple(hp["std"]),
        net_kwargs=dict(hp.get("net_kwargs") or {}),
        class_kinds=list(hp.get("class_kinds") or []),
    )
    net = NETS[meta.net](num_classes=meta.num_classes, **meta.net_kwargs)
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    return net.eval(), meta
