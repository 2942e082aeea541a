"""A segmenter packaged for other tools: the network plus its output head, rebuilt from kwargs alone.

bioimage.io packages (`experiments.apply.bioimageio_export`) ship three weight formats that must give
the same output: TorchScript and ONNX graphs traced from `PackagedSegmenter`, and its state dict,
which the package's architecture entry rebuilds as ``PackagedSegmenter(**kwargs)`` (keys ``net.*``,
the prefix of a Lightning checkpoint). The head is part of the graph, so a tool that ignores a
package's post-processing still gets per-class probabilities or the label map.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Output = Literal["probabilities", "labels"]
OUTPUTS: tuple[str, ...] = ("probabilities", "labels")


class PackagedSegmenter(nn.Module):
    """``NETS[net]`` followed by a softmax over classes (``probabilities``) or their argmax (``labels``).

    Input: a normalised image batch (B, 3, H, W). Output: float (B, classes, H, W) probabilities, or
    int64 (B, 1, H, W) class indices.
    """

    def __init__(
        self, net: str, num_classes: int, net_kwargs: dict | None = None, output: Output = "probabilities"
    ) -> None:
        from lightning_modules.nets import NETS

        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        self.net = NETS[net](num_classes=num_classes, **(net_kwargs or {}))
        self.output = output

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.net(image)
        if self.output == "labels":
            return logits.argmax(dim=1, keepdim=True)
        return logits.softmax(dim=1)


def size_divisor(net: nn.Module) -> int:
    """The side every input is padded to a multiple of inside ``net`` (its coarsest feature stride).

    Each net pads internally (`blocks.pad_to_multiple`) by the divisor of its own encoder: CS-UNet and
    HiFormer state it as ``divisor``, the Swin encoder of Swin-Unet/TransDeepLab as ``swin.divisor``,
    smp models as ``encoder.output_stride``. Inputs that are multiples of it need no padding, which is
    what lets a traced graph (TorchScript, ONNX) run at any such size.
    """
    for owner, attribute in ((net, "divisor"), (getattr(net, "swin", None), "divisor")):
        if isinstance(getattr(owner, attribute, None), int):
            return getattr(owner, attribute)
    stride = getattr(getattr(net, "encoder", None), "output_stride", None)
    if isinstance(stride, int):
        return stride
    raise ValueError(
        f"{type(net).__name__} states no size divisor (divisor, swin.divisor or encoder.output_stride)"
    )
