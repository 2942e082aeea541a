"""Swin-T image classifier: the MicroLite pretraining model whose `swin.*` weights seed the segmenters."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import ClassifierHead
from torch import nn

from lightning_modules.nets.blocks import init_linear
from lightning_modules.nets.swin import SwinEncoder, swin_checkpoint_filter


class SwinClassifier(nn.Module):
    """SwinEncoder -> LayerNorm -> global average pool -> linear head; `(B,3,H,W)` -> `(B, num_classes)`.

    Key names (`swin.*`, `norm.*`, `head.fc.*`) mirror timm's `SwinTransformer` under a `swin.` prefix,
    so `swin_checkpoint_filter` maps this model 1:1 onto the `swin` encoder of every segmenter.
    """

    encoder_parts = {"swin": "swin"}

    def __init__(
        self,
        num_classes: int = 74,
        depth: str | Sequence[int] = "original",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp: str = "mlp",
        drop_path_rate: float = 0.1,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.swin = SwinEncoder(
            depth, embed_dim, num_heads, window_size, mlp=mlp, drop_path_rate=drop_path_rate
        )
        width = self.swin.out_channels[-1]
        self.norm = nn.LayerNorm(width)
        self.head = ClassifierHead(width, num_classes, pool_type="avg", drop_rate=drop_rate, input_fmt="NHWC")
        init_linear(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.swin(x)[-1]))


def checkpoint_filter(state_dict: dict, net: SwinClassifier, part: str = "swin") -> dict:
    """Swin weights -> `swin.*`; the final `norm.*` and the head (`head.fc.*`, timm/Microsoft/ours) 1:1."""
    state_dict = state_dict.get("model", state_dict)
    state_dict = state_dict.get("state_dict", state_dict)
    out = swin_checkpoint_filter(state_dict, net.swin, prefix="swin.")
    for key, value in state_dict.items():
        if key.startswith("norm."):
            out[key] = value
        elif key.startswith("head."):
            out["head.fc." + key.split(".")[-1]] = value
    return out
