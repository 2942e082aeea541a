"""Rebuild a trained segmentation network from its checkpoint alone (no config needed).

`predict`, `export` and `figure` use this; the contract on the checkpoint's hyperparameters is in
docs/design.md ("Checkpoints"). Besides the network, a checkpoint says how its training images were
prepared (intensity rule, resize factor, pixel size), so that `predict` prepares its inputs the same
way. A classification checkpoint (MicroLite pretraining) holds the same basic keys, so the rebuilt
network is probed once: a segmenter must return a map of class logits the size of its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from datamodules.intensity import UNRECORDED_RULE

REQUIRED_HPARAMS = ("net", "num_classes", "class_names", "mean", "std")
#: side of the blank image a rebuilt network is probed with
PROBE_SIZE = 64


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
    #: how 16-bit/float images became 8-bit in training (`datamodules.intensity`)
    intensity: str = UNRECORDED_RULE
    #: the factor training images were resized by
    scale: float = 1.0
    #: the side in nm of a pixel as the network saw it in training, when known
    pixel_size_nm: float | None = None


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
        intensity=hp.get("intensity") or UNRECORDED_RULE,
        scale=float(hp.get("scale") or 1.0),
        pixel_size_nm=hp.get("pixel_size_nm"),
    )
    net = NETS[meta.net](num_classes=meta.num_classes, **meta.net_kwargs)
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    _check_segments(net.eval(), meta, path)
    return net, meta


def _check_segments(net: nn.Module, meta: SegmenterMeta, path: Path) -> None:
    """Raise unless ``net`` maps a (1, 3, 64, 64) image to (1, num_classes, 64, 64) logits."""
    expected = (1, meta.num_classes, PROBE_SIZE, PROBE_SIZE)
    try:
        with torch.inference_mode():
            shape = tuple(net(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)).shape)
    except Exception as err:  # a network that cannot even take an image is not a segmenter either
        shape = f"an error ({type(err).__name__}: {err})"
    if shape != expected:
        raise ValueError(
            f"{path}: network {meta.net!r} returns {shape} for a {PROBE_SIZE}x{PROBE_SIZE} image instead of "
            f"a {expected} class map, so this is not a segmentation checkpoint (a classifier, e.g. "
            "MicroLite pretraining?); use a .ckpt saved by `fit` with a segmentation model"
        )
