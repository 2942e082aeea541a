"""HiFormer (Heidari et al., WACV 2023): CNN + Swin-T pyramid, Double-Level Fusion (DLF), conv decoder.

Encoder (as in the official `PyramidFeatures`): the CNN's maps at /4, /8, /16 are projected (1x1 conv)
to the Swin widths 96, 192, 384; the /4 map is the input of Swin stage 1 (no Swin patch embedding),
and each Swin stage's output is added to the projected CNN map of its scale (the sum feeds the next
stage's patch merging). The /4 and /16 sums are the two DLF levels, each with a CLS token (mean of its
LayerNorm-ed tokens), plus a learned position embedding per level (`cross_pos_embed`).

DLF as the official HiFormer-B config (`configs/HiFormer_configs.py`): one multi-scale block of depth
(1, 2, 0) (one ViT block on the /4 level, two on the /16 level, one cross-attention per level), heads
(6, 12), MLP ratio 2, qkv bias, then a LayerNorm per level. Decoder (official `ConvUpsample`): the /16
level up through two conv-GN-ReLU-2x steps, the /4 level through one conv-GN-ReLU, summed, 1x1 to 16 ch,
4x up, 3x3 to the classes.

Two departures from the official code, both its bugs (no published number of our tables needs them):
its `MultiScaleBlock.forward` runs the per-level blocks after the cross-attention and returns the
tokens from before them (`outs`, not `outs_b`), so those blocks never affect the output; here their
output is the block's output. And its `All2Cross.apply(_init_weights)` re-draws every Linear and
LayerNorm of the Swin-T and patch merging it had just loaded; here only layers built here are
initialised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.models.crossvit import MultiScaleBlock
from torch import nn

from lightning_modules.nets.blocks import crop, init_linear, nchw_to_nhwc, pad_to_multiple
from lightning_modules.nets.cnn_encoder import CNNEncoder, micronet_checkpoint_filter
from lightning_modules.nets.swin import SwinEncoder, resolve_depths, swin_checkpoint_filter

#: HiFormer uses three scales (/4, /8, /16) of both encoders; DLF fuses the first and the last
SCALES = 3


def _conv_gn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.GroupNorm(32, out_ch), nn.ReLU()
    )


class FuseThenBlocks(MultiScaleBlock):
    """HiFormer's multi-scale block: each level's CLS token attends to the other level's tokens (timm's
    CrossViT parts: `projs`, `fusion`, `revert_projs`), then each level runs its ViT `blocks`.

    CrossViT (timm's `forward`) runs the blocks first; HiFormer's order is kept, with the blocks' output
    returned (the official code returns the fused tokens and drops the blocks' output).
    """

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(x)
        fused = []
        for i, (proj, fusion, revert) in enumerate(
            zip(self.projs, self.fusion, self.revert_projs, strict=True)
        ):
            cls = fusion(torch.cat([proj(x[i][:, :1]), x[(i + 1) % n][:, 1:]], dim=1))[:, :1]
            fused.append(torch.cat([revert(cls), x[i][:, 1:]], dim=1))
        return [blocks(tokens) for blocks, tokens in zip(self.blocks, fused, strict=True)]


class DoubleLevelFusion(nn.Module):
    """DLF: `[(B,1+N_s,C_s), (B,1+N_l,C_l)]` token lists (CLS first) and their grids -> the same, fused.

    `depth`: one `(blocks on the small-scale level, blocks on the large-scale level, cross-attention
    blocks)` per multi-scale block, 0 cross-attention blocks meaning one (timm's and the official
    convention). `pos_embed_grids`: the token grids at which the position embeddings are learned
    (those of the training size); other grids get them resampled (bicubic), `None` for no embedding.
    """

    def __init__(
        self,
        dims: Sequence[int],
        depth: Sequence[Sequence[int]] = ((1, 2, 0),),
        num_heads: Sequence[int] = (6, 12),
        mlp_ratio: float = 2.0,
        pos_embed_grids: Sequence[int] | None = (128, 32),
    ) -> None:
        super().__init__()
        dims = tuple(dims)
        self.blocks = nn.Sequential(
            *[
                FuseThenBlocks(
                    dim=dims,
                    patches=(0, 0),  # unused by timm
                    depth=tuple(d),
                    num_heads=tuple(num_heads),
                    mlp_ratio=(mlp_ratio,) * len(dims),
                    qkv_bias=True,
                    drop_path=[0.0] * sum(d),  # official: drop_path_rate 0
                )
                for d in depth
            ]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(d) for d in dims])
        init_linear(self)
        self.grids = tuple(pos_embed_grids) if pos_embed_grids else ()
        embeds = zip(self.grids, dims, strict=True) if self.grids else ()
        self.pos_embed = nn.ParameterList(
            [nn.Parameter(trunc_normal_(torch.zeros(1, 1 + g * g, d), std=0.02)) for g, d in embeds]
        )

    def forward(self, levels: list[torch.Tensor], grids: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        if self.grids:
            levels = [
                x + resample_abs_pos_embed(p, list(hw), [g, g], num_prefix_tokens=1)
                for x, p, hw, g in zip(levels, self.pos_embed, grids, self.grids, strict=True)
            ]
        levels = self.blocks(levels)
        return [norm(x) for norm, x in zip(self.norms, levels, strict=True)]


class HiFormer(nn.Module):
    """HiFormer: `(B,3,H,W)` -> `(B,num_classes,H,W)` at any H, W; encoders under `cnn` and `swin`.

    `depth` names the Swin-T depths (`original` / `intermediate`); HiFormer keeps the first three
    stages and feeds stage 1 with CNN features, so `swin` has no patch embedding and no fourth stage.
    `dlf_*`: the DLF config (defaults: HiFormer-B). `cross_pos_embed`: learned position embeddings on
    both levels, held at the token grids of a `pos_embed_size`² input and resampled for other sizes.
    """

    encoder_parts = {"cnn": "cnn", "swin": "swin"}

    def __init__(
        self,
        num_classes: int,
        encoder_name: str = "resnet50",
        depth: str | Sequence[int] = "intermediate",
        embed_dim: int = 96,
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 8,
        drop_path_rate: float = 0.1,
        dlf_depth: Sequence[Sequence[int]] = ((1, 2, 0),),
        dlf_heads: Sequence[int] = (6, 12),
        dlf_mlp_ratio: float = 2.0,
        cross_pos_embed: bool = True,
        pos_embed_size: int = 512,
        decoder_channels: int = 128,
    ) -> None:
        super().__init__()
        self.swin = SwinEncoder(
            resolve_depths(depth)[:SCALES],
            embed_dim,
            tuple(num_heads)[:SCALES],
            window_size,
            drop_path_rate=drop_path_rate,
        )
        del self.swin.patch_embed  # stage 1 reads the CNN's /4 map instead
        self.encoder_name = encoder_name  # `load_weights` picks CNN weights by it
        self.cnn = CNNEncoder(encoder_name, scales=SCALES)
        widths = self.swin.out_channels
        self.project = nn.ModuleList(
            [nn.Conv2d(c, w, 1) for c, w in zip(self.cnn.out_channels, widths, strict=True)]
        )
        small, large = widths[0], widths[-1]
        self.cls_norms = nn.ModuleList([nn.LayerNorm(small), nn.LayerNorm(large)])
        grids = (pos_embed_size // 4, pos_embed_size // 16) if cross_pos_embed else None
        self.dlf = DoubleLevelFusion((small, large), dlf_depth, dlf_heads, dlf_mlp_ratio, grids)
        self.up_large = nn.Sequential(
            _conv_gn_relu(large, decoder_channels),
            nn.Upsample(scale_factor=2, mode="bilinear"),
            _conv_gn_relu(decoder_channels, decoder_channels),
            nn.Upsample(scale_factor=2, mode="bilinear"),
        )
        self.up_small = _conv_gn_relu(small, decoder_channels)
        self.head = nn.Sequential(
            nn.Conv2d(decoder_channels, 16, 1),
            nn.ReLU(),
            nn.Upsample(scale_factor=4, mode="bilinear"),
            nn.Conv2d(16, num_classes, 3, padding=1),
        )
        self.divisor = self.cnn.divisor
        init_linear(self.cls_norms)

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The two DLF inputs: `[(B,1+N_4,96), (B,1+N_16,384)]`, CLS token first."""
        cnn = [nchw_to_nhwc(p(f)) for p, f in zip(self.project, self.cnn(x), strict=True)]
        sums, tokens = [], None
        for stage, c in zip(self.swin.layers, cnn, strict=True):
            tokens = c + stage(c if tokens is None else tokens)
            sums.append(tokens)
        out = []
        for norm, level in zip(self.cls_norms, (sums[0], sums[-1]), strict=True):
            flat = level.flatten(1, 2)
            out.append(torch.cat([norm(flat).mean(1, keepdim=True), flat], dim=1))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = pad_to_multiple(x, self.divisor)
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        small, large = self.dlf(self.levels(x), [(h, w), (h // 4, w // 4)])
        small = small[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, h, w)
        large = large[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, h // 4, w // 4)
        y = self.up_small(small) + self.up_large(large)
        return crop(self.head(y), size)


def checkpoint_filter(state_dict: dict, net: HiFormer, part: str) -> dict:
    """`part="swin"`: Swin-T weights -> `swin.*`; `part="cnn"`: smp/MicroNet encoder -> `cnn.encoder.*`.

    HiFormer's Swin has neither patch embedding nor a fourth stage; a full Swin-T checkpoint's
    `patch_embed.*` and `layers.3.*` come back as unexpected keys.
    """
    if part == "swin":
        return swin_checkpoint_filter(state_dict, net.swin, prefix="swin.")
    return micronet_checkpoint_filter(state_dict, net.cnn.encoder, prefix="cnn.encoder.")
