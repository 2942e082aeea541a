"""Swin-Unet (Cao et al., 2022): Swin-T encoder, Swin decoder with patch expanding, concat+linear skips.

`SwinUnetDecoder` is shared with CS-UNet, which feeds it two skip maps per scale instead of one.
Decoder seeding (`seed_decoder`, on by default): a Swin source loaded into the encoder also fills each
decoder stage with the blocks of the encoder stage at the same scale, as Swin-Unet's `load_from` does
(`layers.k` -> `layers_up.(3-k)`; its `layers_up.0` is a patch expanding with no blocks, so stage 4 seeds
nothing) and as the CS-UNet paper's Fig. 1 describes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import calculate_drop_path_rates
from torch import nn

from lightning_modules.nets.blocks import (
    FinalPatchExpand,
    PatchExpand,
    SkipFusion,
    crop,
    init_linear,
    nhwc_to_nchw,
)
from lightning_modules.nets.swin import SwinEncoder, mirror_blocks, swin_checkpoint_filter, swin_stage


class SwinUnetDecoder(nn.Module):
    """Bottleneck `(B,h,w,C3)` + skips -> logits `(B, num_classes, 32h, 32w)`.

    Per scale, from coarse to fine: PatchExpand (2x up, half the channels) -> concat with that scale's
    skip maps + linear -> Swin stage of the encoder's depth at that scale. Then LayerNorm, a 4x
    FinalPatchExpand back to pixels and a linear projection to the classes.
    """

    def __init__(
        self,
        num_classes: int,
        channels: Sequence[int],
        depths: Sequence[int],
        num_heads: Sequence[int],
        window_size: int = 8,
        mlp: str = "mlp",
        drop_path_rate: float = 0.1,
        skips_per_scale: int = 1,
    ) -> None:
        super().__init__()
        fine_to_coarse = range(len(channels) - 2, -1, -1)
        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        self.norm = nn.LayerNorm(channels[-1])
        self.expand = nn.ModuleList([PatchExpand(channels[i + 1]) for i in fine_to_coarse])
        self.fuse = nn.ModuleList(
            [SkipFusion([channels[i]] * (1 + skips_per_scale), channels[i]) for i in fine_to_coarse]
        )
        self.stages = nn.ModuleList(
            [
                swin_stage(
                    channels[i], channels[i], depths[i], num_heads[i], window_size, drop_path=dpr[i], mlp=mlp
                )
                for i in fine_to_coarse
            ]
        )
        self.norm_up = nn.LayerNorm(channels[0])
        self.final_expand = FinalPatchExpand(channels[0], 4)
        self.head = nn.Linear(channels[0], num_classes)
        init_linear(self.norm)
        init_linear(self.expand)
        init_linear(self.fuse)
        init_linear(self.final_expand)
        init_linear(self.head)

    def forward(self, x: torch.Tensor, skips: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        """`skips[i]`: the NHWC maps at scale i (reduction 4 * 2**i), fine to coarse, one list per scale."""
        x = self.norm(x)
        for expand, fuse, stage, skip in zip(
            self.expand, self.fuse, self.stages, reversed(skips), strict=True
        ):
            x = stage(fuse(expand(x), *skip))
        return nhwc_to_nchw(self.head(self.final_expand(self.norm_up(x))))


def mirrored_stages(decoder: str, encoder: str, stages: int) -> dict[str, str]:
    """`decoder.stages.j` (coarse to fine, scale `stages-2-j`) <- `encoder.layers.<same scale>`."""
    return {f"{decoder}.stages.{j}": f"{encoder}.layers.{stages - 2 - j}" for j in range(stages - 1)}


class SwinUnet(nn.Module):
    """Swin-Unet: `(B,3,H,W)` -> `(B,num_classes,H,W)` at any H, W; Swin-T encoder under `swin`."""

    encoder_parts = {"swin": "swin"}

    def __init__(
        self,
        num_classes: int,
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp: str = "mlp",
        drop_path_rate: float = 0.1,
        seed_decoder: bool = True,
    ) -> None:
        super().__init__()
        self.seed_decoder = seed_decoder
        self.swin = SwinEncoder(
            depth, embed_dim, num_heads, window_size, mlp=mlp, drop_path_rate=drop_path_rate
        )
        self.decoder = SwinUnetDecoder(
            num_classes, self.swin.out_channels, self.swin.depths, num_heads, window_size, mlp, drop_path_rate
        )

    @property
    def decoder_seeds(self) -> dict[str, str]:
        """Decoder stage <- encoder stage whose Swin blocks seed it (empty with `seed_decoder=False`)."""
        return mirrored_stages("decoder", "swin", len(self.swin.depths)) if self.seed_decoder else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.swin(x)  # the encoder pads to a multiple of 32; crop the logits back
        logits = self.decoder(features[-1], [[f] for f in features[:-1]])
        return crop(logits, x.shape[-2:])


def checkpoint_filter(state_dict: dict, net: SwinUnet, part: str = "swin") -> dict:
    """Swin-T weights (timm, Microsoft, our classifier or segmenters) -> `swin.*` keys, and decoder seeds."""
    return mirror_blocks(swin_checkpoint_filter(state_dict, net.swin, prefix="swin."), net.decoder_seeds)
