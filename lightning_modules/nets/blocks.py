"""Blocks shared by the Swin-based segmenters (Swin-Unet, CS-UNet, HiFormer, TransDeepLab).

Swin parts work on channels-last maps `(B, H, W, C)` as timm's Swin stages do, so no permute is needed
between encoder, decoder and skip fusion; convert once at the CNN boundary with `nchw_to_nhwc`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn


def nchw_to_nhwc(x: torch.Tensor) -> torch.Tensor:
    """CNN feature map `(B, C, H, W)` -> token map `(B, H, W, C)`."""
    return x.permute(0, 2, 3, 1)


def nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    """Token map `(B, H, W, C)` -> CNN feature map `(B, C, H, W)` (contiguous, for convs and heads)."""
    return x.permute(0, 3, 1, 2).contiguous()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad an image batch `(B, C, H, W)` at the bottom/right so H and W divide by `multiple`.

    Nets call this first and `crop` last, which is how they accept any input size.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to_multiple`: keep the top-left `size` of `(B, C, H, W)`."""
    return x[..., : size[0], : size[1]]


def init_linear(module: nn.Module) -> None:
    """Swin's init for new layers (trunc-normal 0.02 weights, zero bias, unit LayerNorm).

    Apply it only to freshly built parts, never to a pretrained encoder (issue 4, item 5).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _pixel_shuffle_nhwc(x: torch.Tensor, scale: int) -> torch.Tensor:
    """`(B, H, W, s*s*C)` -> `(B, s*H, s*W, C)`: channel groups become an s x s pixel block."""
    b, h, w, c = x.shape
    c_out = c // (scale * scale)
    x = x.reshape(b, h, w, scale, scale, c_out).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * scale, w * scale, c_out)


class PatchExpand(nn.Module):
    """Swin-Unet's 2x up-sampling: linear to 2C, rearrange 2x2, LayerNorm -> `(B, 2H, 2W, C/2)`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_pixel_shuffle_nhwc(self.expand(x), 2))


class FinalPatchExpand(nn.Module):
    """Swin-Unet's last 4x up-sampling back to the pixel grid: `(B, H, W, C)` -> `(B, 4H, 4W, C)`."""

    def __init__(self, dim: int, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.expand = nn.Linear(dim, scale * scale * dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_pixel_shuffle_nhwc(self.expand(x), self.scale))


class ResMLP(nn.Module):
    """CS-UNet's MLP for Swin blocks: fc1 -> GELU -> drop -> fc2 (+ input) -> GELU -> drop -> fc3.

    A drop-in for timm's `Mlp` (`block.mlp`): `fc1` (C->hidden) and `fc2` (hidden->C) have the names and
    shapes of timm's, so plain Swin-T weights load into them; `fc3` (C->C) is the extra layer and has no
    pretrained counterpart in a plain Swin checkpoint.
    """

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.fc3 = nn.Linear(in_features, in_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop1(self.act(self.fc1(x)))
        h = self.fc2(h) + x
        return self.fc3(self.drop2(self.act(h)))


class SkipFusion(nn.Module):
    """Skip connection by concatenation + linear (Swin-Unet's `concat_back_dim`), channels-last."""

    def __init__(self, in_dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(sum(in_dims), out_dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat(xs, dim=-1))
