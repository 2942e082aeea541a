"""Any smp CNN encoder as a 4-scale pyramid at reductions 4, 8, 16, 32, and the NASA MicroNet key map.

Strides are read from a dummy forward at build time, never from the encoder's name. With smp 0.6 all
encoders of the paper (efficientnet-b2..b4, resnet18..101, resnext50_32x4d, se_resnet50..152,
se_resnext50/101_32x4d, densenet121, mobilenet_v2, inceptionv4, vgg16_bn) give maps at /1../32 for
inputs that divide by 32 (smp pads inceptionv4's valid convolutions and drops vgg's last pooling);
a family that does not gets its nearest map resized to the wanted grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

PYRAMID = (4, 8, 16, 32)
_PROBE = 64


class CNNEncoder(nn.Module):
    """`forward(x (B,3,H,W))` -> 4 NCHW maps at `H/4, H/8, H/16, H/32` (H, W multiples of 32).

    `out_channels` / `reductions` describe those 4 maps; `encoder` is the smp encoder (its state dict is
    what NASA's MicroNet files hold).
    """

    def __init__(self, name: str = "resnet34", in_chans: int = 3, scales: int = len(PYRAMID)) -> None:
        super().__init__()
        self.name = name
        pyramid = PYRAMID[:scales]
        self.encoder = get_encoder(name, in_channels=in_chans, depth=5, weights=None)
        shapes = _probe(self.encoder, in_chans)
        found = [_PROBE / s[-1] for s in shapes]
        self.indices = [min(range(len(found)), key=lambda i, r=r: abs(found[i] - r)) for r in pyramid]
        if self.indices[-1] < len(shapes) - 1:
            # fewer scales (HiFormer: /4../16): smp stops early, and the stages it never runs are dropped
            # so that no parameter goes without a gradient (DDP) or gets counted
            self.encoder = get_encoder(name, in_channels=in_chans, depth=self.indices[-1], weights=None)
            _trim_to_used(self.encoder, in_chans)
        self.out_channels = [int(shapes[i][1]) for i in self.indices]
        self.reductions = list(pyramid)
        self.divisor = PYRAMID[-1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        features = self.encoder(x)
        out = []
        for i, r in zip(self.indices, self.reductions, strict=True):
            f, size = features[i], (-(-h // r), -(-w // r))
            if tuple(f.shape[-2:]) != size:
                f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            out.append(f)
        return out


def _probe(encoder: nn.Module, in_chans: int) -> list[torch.Size]:
    """Feature shapes of a dummy forward in eval mode (BatchNorm running stats stay untouched)."""
    with torch.no_grad():
        was_training = encoder.training
        encoder.eval()
        shapes = [f.shape for f in encoder(torch.zeros(1, in_chans, _PROBE, _PROBE))]
        encoder.train(was_training)
    return shapes


def _trim_to_used(encoder: nn.Module, in_chans: int) -> None:
    """Drop the submodules a forward never calls; freeze parameters that still get no gradient.

    smp builds every stage whatever its `depth`; some encoders skip the deep ones (ResNet's `layer4`),
    others run them and slice the result away (EfficientNet). Either way no trainable parameter is
    left without a gradient (DDP requires it), and skipped stages leave the state dict.
    """
    called: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda m, _: called.add(id(m))) for m in encoder.modules()]
    was_training = encoder.training
    encoder.eval()  # BatchNorm running stats stay untouched
    features = encoder(torch.zeros(1, in_chans, _PROBE, _PROBE))
    sum(f.float().mean() for f in features[1:]).backward()
    encoder.train(was_training)
    for handle in handles:
        handle.remove()
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # may be iterated rather than called
    dropped: list[str] = []
    for name, module in list(encoder.named_modules()):
        if (
            id(module) in called
            or isinstance(module, containers)
            or any(name.startswith(d + ".") for d in dropped)
        ):
            continue
        if next(module.parameters(), None) is not None:
            parent, _, child = name.rpartition(".")
            setattr(encoder.get_submodule(parent), child, nn.Identity())
            dropped.append(name)
    for param in encoder.parameters():
        if param.grad is None:
            param.requires_grad_(False)
        param.grad = None


def micronet_checkpoint_filter(state_dict: dict, encoder: nn.Module, prefix: str = "") -> dict:
    """Rename a NASA MicroNet/ImageNet smp-encoder state dict to `prefix + <smp encoder key>`.

    NASA's MicroNet files are an smp encoder's state dict (their `segmentation_training` loads them with
    `model.encoder.load_state_dict`; keys like `conv1.weight`, `layer1.0.bn1.running_mean`); checkpoints
    of their training of an `nn.DataParallel` model carry a `module.` prefix. A whole smp model, a
    `CNNEncoder` or a `CNNClassifier` (`encoder.` prefix) is accepted too; decoder/head keys are dropped.
    `encoder` is the smp encoder the keys must fit (used to tell its keys from a wrapper's).
    """
    state_dict = state_dict.get("state_dict", state_dict)
    target = encoder.state_dict()
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key not in target and key.startswith("encoder."):
            key = key.removeprefix("encoder.")
        elif key.startswith(("decoder.", "segmentation_head.", "classification_head.")):
            continue
        out[prefix + key] = value
    return out
