"""TransDeepLabv3+ (Azad et al., PRIME/MICCAI 2022): DeepLabv3+ with Swin blocks everywhere, no convolution.

Layout of the official `swin_224_7_2level` config (the paper's best), with our window 8:
- encoder: the first three Swin-T stages; the low-level map is stage 1's output (/4, 96 ch, LayerNorm),
  the high-level map stage 3's (/16, 384 ch);
- Swin spatial pyramid pooling (SSPP): the high-level map through one Swin stage per window size, the
  levels concatenated, fused by "cross-contextual attention" (CBAM: channel then spatial attention,
  residual), projected to 96 ch, ReLU, dropout;
- Swin decoder: two (Swin stage -> 2x patch expand) steps (/16 -> /4), concatenation with the
  low-level map (192 ch), a deeper Swin stage -> 2x expand (/2), LayerNorm, 2x expand (/1), 1x1 to
  the classes. TransDeepLab's patch expanding keeps the channel count (Swin-Unet's halves it).

SSPP windows (`sspp_window_rule`): the official `SwinASPP` takes every divisor of the high-level map
side from its start window (7) up, the last one global (14x14 map at 224²: 7, 14), with a hand-written
list for a 24x24 map. Nets here take any input size, so the windows are a hyperparameter whose default
is that rule at the 512² training size (32x32 map: 8, 16, 32). The global level gets one block, as in
the official code; at other sizes timm's blocks zero-pad the map to the window.

Decoder seeding (`seed_decoder`, default on), as the official `SwinDecoder.load_from`
(`layers.k` -> `layers_up.(1-k)` and `last_layers_up.(1-k)`, tensors whose shapes fit): the /8 step
gets stage 1's blocks (96 ch, 3 heads: all fit); the /4 stage after the concatenation gets stage 2's
(192 ch: all but the relative-position tables, whose head count differs); the /16 step is offered
stage 2 too, where nothing fits (96 vs 192 channels). The official SSPP loads nothing in this config.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers.cbam import CbamModule
from torch import nn

from lightning_modules.nets.blocks import FinalPatchExpand, crop, init_linear, nhwc_to_nchw
from lightning_modules.nets.swin import (
    SwinEncoder,
    mirror_blocks,
    resolve_depths,
    swin_checkpoint_filter,
    swin_stage,
)

#: encoder stages TransDeepLab uses: the low level is stage 0 (/4), the high level stage 2 (/16)
LOW, HIGH = 0, 2


def sspp_window_rule(map_size: int, start: int = 7) -> tuple[int, ...]:
    """The official SSPP window sizes for a `map_size`² high-level map: its divisors from `start` up."""
    if map_size == 24:
        return (4, 6, 8, 12, 24)  # the official list for this size
    return tuple(w for w in range(start, map_size + 1) if map_size % w == 0)


class SwinSpatialPyramidPooling(nn.Module):
    """SSPP: `(B,h,w,C)` -> `(B,h,w,out_dim)`; one Swin stage per window size, CBAM-fused."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        window_sizes: Sequence[int],
        depth: int = 2,
        num_heads: int = 3,
        drop_path_rate: float = 0.1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        widest = max(window_sizes)
        self.levels = nn.ModuleList(
            [
                swin_stage(dim, dim, 1 if ws == widest else depth, num_heads, ws, drop_path=drop_path_rate)
                for ws in window_sizes
            ]
        )
        fused = dim * len(window_sizes)
        # the official CBAM: channel reduction 12, a 1x1 spatial-attention convolution
        self.attention = CbamModule(fused, rd_ratio=1 / 12, spatial_kernel_size=1)
        self.proj = nn.Linear(fused, out_dim)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        init_linear(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = torch.cat([level(x) for level in self.levels], dim=-1)
        maps = nhwc_to_nchw(pyramid)
        fused = (maps + self.attention(maps)).permute(0, 2, 3, 1)
        return self.drop(self.act(self.proj(fused)))


class TransDeepLabDecoder(nn.Module):
    """SSPP output (/16) + low-level map (/4), both `(B,h,w,C)` NHWC -> logits `(B,num_classes,16h,16w)`."""

    def __init__(
        self,
        num_classes: int,
        dim: int,
        steps_up: int = 2,
        depth: int = 2,
        last_depth: int = 6,
        num_heads: int = 3,
        window_size: int = 8,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.up = nn.Sequential(
            *[
                nn.Sequential(
                    swin_stage(dim, dim, depth, num_heads, window_size, drop_path=drop_path_rate),
                    FinalPatchExpand(dim, 2),
                )
                for _ in range(steps_up)
            ]
        )
        fused = 2 * dim  # after concatenation with the low-level map
        self.last = nn.Sequential(
            swin_stage(fused, fused, last_depth, num_heads, window_size), FinalPatchExpand(fused, 2)
        )
        self.norm = nn.LayerNorm(fused)
        self.final_expand = FinalPatchExpand(fused, 2)
        self.head = nn.Linear(fused, num_classes, bias=False)
        for part in (self.up, self.last, self.norm, self.final_expand, self.head):
            init_linear(part)

    def forward(self, pooled: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        x = torch.cat([low_level, self.up(pooled)], dim=-1)
        x = self.final_expand(self.norm(self.last(x)))
        return nhwc_to_nchw(self.head(x))


class TransDeepLab(nn.Module):
    """TransDeepLabv3+: `(B,3,H,W)` -> `(B,num_classes,H,W)` at any H, W; Swin-T encoder under `swin`.

    `depth` names the Swin-T depths (`original` [2,2,6,2] / `intermediate` [2,2,2,2]); TransDeepLab
    keeps the first three stages, so the encoder has no fourth stage to load or train.
    """

    encoder_parts = {"swin": "swin"}

    def __init__(
        self,
        num_classes: int,
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        sspp_window_sizes: Sequence[int] = (8, 16, 32),
        sspp_depth: int = 2,
        decoder_depth: int = 2,
        decoder_last_depth: int = 6,
        decoder_heads: int = 3,
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
    ) -> None:
        super().__init__()
        self.seed_decoder = seed_decoder
        stages = HIGH + 1
        self.swin = SwinEncoder(
            resolve_depths(depth)[:stages],
            embed_dim,
            tuple(num_heads)[:stages],
            window_size,
            drop_path_rate=drop_path_rate,
        )
        low_dim, high_dim = self.swin.out_channels[LOW], self.swin.out_channels[HIGH]
        self.low_norm = nn.LayerNorm(low_dim)
        self.sspp = SwinSpatialPyramidPooling(
            high_dim, low_dim, sspp_window_sizes, sspp_depth, decoder_heads, drop_path_rate
        )
        self.decoder = TransDeepLabDecoder(
            num_classes,
            low_dim,
            steps_up=HIGH - LOW,
            depth=decoder_depth,
            last_depth=decoder_last_depth,
            num_heads=decoder_heads,
            window_size=window_size,
            drop_path_rate=drop_path_rate,
        )
        init_linear(self.low_norm)

    @property
    def decoder_seeds(self) -> dict[str, str]:
        """Decoder stage <- encoder stage whose Swin blocks seed it (empty with `seed_decoder=False`)."""
        if not self.seed_decoder:
            return {}
        return {
            "decoder.up.0.0": "swin.layers.1",
            "decoder.up.1.0": "swin.layers.0",
            "decoder.last.0": "swin.layers.1",
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.swin(x)  # the encoder pads to a multiple of 16; crop the logits back
        logits = self.decoder(self.sspp(features[HIGH]), self.low_norm(features[LOW]))
        return crop(logits, x.shape[-2:])


def checkpoint_filter(state_dict: dict, net: TransDeepLab, part: str = "swin") -> dict:
    """Swin-T weights (timm, Microsoft, our classifier or segmenters) -> `swin.*` keys of `net`.

    A 4-stage checkpoint's last stage (`layers.3.*`) has no place here; it comes back as unexpected keys.
    The decoder seeds (`decoder_seeds`) are added.
    """
    return mirror_blocks(swin_checkpoint_filter(state_dict, net.swin, prefix="swin."), net.decoder_seeds)
